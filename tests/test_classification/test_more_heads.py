"""Every mmpretrain twin against the float64 reference, and the heads whose
classifier differs from LinearClsHead's: DeiT (two tokens, a mean of two
classifiers), LeViT (BatchNorm1d, then the linear layer), EfficientFormer,
Conformer (two classifiers, two losses) and Vig; and the classification
heads ISDA refuses.

The reference sees only what the final linear layers receive (captured by
a forward pre-hook, :func:`capture.layer_inputs`) and the model's
parameters, never what the adapter computed."""
import contextlib
import copy
import re

import pytest
import torch
import torch.nn.functional as F
from capture import layer_inputs
from isda_reference import (
    reference_augment,
    reference_soft_augment,
    reference_statistics,
    reference_weighted_statistics,
)
from mmengine.optim import OptimWrapper
from mmengine.runner import load_checkpoint, save_checkpoint
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import isda_mm  # noqa: F401
from isda_mm.classification.heads import REFUSED_HEADS

pytestmark = [
    pytest.mark.filterwarnings('ignore:MMPretrain cannot train the distilled'),
    pytest.mark.filterwarnings('ignore:ISDADeiTClsHead'),
]

C, N, IN = 4, 10, 6
LAMBDA = 1.5
# Class weights, smoothing and Mixup's mu exact in float32 (the stock loss
# makes its targets in float32), so float64 tolerances stay tight.
CLASS_WEIGHT = [1.0, 2.0, 0.5, 1.5]
MU = 0.75

# Every twin's stock head, with the layers before its classifier where it
# has them (so the captured features are not the head's input).
TWINS = {
    'LinearClsHead': dict(num_classes=C, in_channels=IN),
    'StackedLinearClsHead': dict(num_classes=C, in_channels=IN,
                                 mid_channels=[5]),
    'VisionTransformerClsHead': dict(num_classes=C, in_channels=IN,
                                     hidden_dim=7),
    'DeiTClsHead': dict(num_classes=C, in_channels=IN, hidden_dim=5),
    'LeViTClsHead': dict(num_classes=C, in_channels=IN, distillation=False),
    'EfficientFormerClsHead': dict(num_classes=C, in_channels=IN,
                                   distillation=False),
    'ConformerHead': dict(num_classes=C, in_channels=[IN, 5]),
    'VigClsHead': dict(num_classes=C, in_channels=IN, hidden_dim=5),
}
# The other tests: the heads whose classifier differs.
HEADS = {
    'DeiTClsHead': dict(num_classes=C, in_channels=IN),
    'DeiTClsHead-hidden': TWINS['DeiTClsHead'],
    **{kind: TWINS[kind] for kind in ('LeViTClsHead',
                                       'EfficientFormerClsHead',
                                       'ConformerHead', 'VigClsHead')},
}
LOSSES = {
    'ce': dict(type='CrossEntropyLoss', loss_weight=0.7,
               class_weight=CLASS_WEIGHT),
    'smooth': dict(type='LabelSmoothLoss', label_smooth_val=0.25,
                   loss_weight=2.0, class_weight=CLASS_WEIGHT),
    # Mixup's gt_score, scored by a class-weighted cross-entropy.
    'mixup': dict(type='CrossEntropyLoss', loss_weight=0.7,
                  class_weight=CLASS_WEIGHT),
    # LinearClsHead only: the loss module's other ways to score targets.
    'mixup-soft-smooth': dict(type='LabelSmoothLoss', label_smooth_val=0.25,
                              mode='classy_vision', loss_weight=0.5),
    'multilabel-smooth': dict(type='LabelSmoothLoss', label_smooth_val=0.25,
                              mode='multi_label', use_sigmoid=False),
    'mixup-use-soft': dict(type='CrossEntropyLoss', use_soft=True,
                           class_weight=CLASS_WEIGHT),
}


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny tensors: threads cost more than they give."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def stock_type(key):
    return key.split('-')[0]


def feats_for(key, n=N, dtype=torch.float32):
    kind = stock_type(key)
    if kind == 'VisionTransformerClsHead':  # (patch tokens, class token)
        shapes = [(n, IN, 2, 2), (n, IN)]
    elif kind == 'DeiTClsHead':  # (class token, distillation token)
        shapes = [(n, IN), (n, IN)]
    elif kind == 'ConformerHead':  # (conv feature, class token)
        shapes = [(n, IN), (n, 5)]
    else:
        return (torch.randn(n, IN, dtype=dtype), )
    return ([torch.randn(s, dtype=dtype) for s in shapes], )


def leaves(feats):
    """The tensors of ``feats``, flat."""
    return [x for f in feats for x in (f if isinstance(f, list) else [f])]


def samples(n=N, mixed=False):
    data = [DataSample().set_gt_label(y)
            for y in torch.randint(C, (n, )).tolist()]
    if mixed:  # as Mixup leaves them: one mu per batch
        onehot = F.one_hot(torch.cat([s.gt_label for s in data]), C).float()
        for s, score in zip(data, MU * onehot + (1 - MU) * onehot.roll(1, 0)):
            s.set_gt_score(score)
    return data


def build_pair(key, loss=LOSSES['ce'], table=HEADS, **isda):
    cfg = dict(type=stock_type(key), **table[key], loss=loss)
    stock = MODELS.build(cfg)
    head = MODELS.build(dict(cfg, type='ISDA' + cfg['type'], **isda))
    head.load_state_dict({**head.state_dict(), **stock.state_dict()})
    return stock, head


def owners(head):
    """Each classifier's ISDA state: the head's, then the others'."""
    return [head, *head.isda_others]


def final_layers(kind, head):
    """The stock head's final linear layers, as mmpretrain 1.2.0 builds
    them."""
    return {
        'LinearClsHead': lambda: [head.fc],
        'StackedLinearClsHead': lambda: [head.layers[-1].fc],
        'VisionTransformerClsHead': lambda: [head.layers.head],
        'DeiTClsHead': lambda: [head.layers.head, head.layers.head_dist],
        'LeViTClsHead': lambda: [head.head.linear],
        'EfficientFormerClsHead': lambda: [head.head],
        'ConformerHead': lambda: [head.conv_cls_head, head.trans_cls_head],
        'VigClsHead': lambda: [head.fc2],
    }[kind]()


def reference_classifiers(kind, inputs, params):
    """``(features, logits, weight)`` of each cross-entropy the stock loss
    sums, from the final layers' inputs and parameters: DeiT scores the
    mean of its tokens' logits (ISDA translates the class token, whose
    classifier weighs ``W / 2`` there), Conformer one per classifier."""
    logits = [x @ w.T + b for x, (w, b) in zip(inputs, params)]
    if kind == 'DeiTClsHead':
        return [(inputs[0], (logits[0] + logits[1]) / 2, params[0][0] / 2)]
    return [(x, z, w) for x, z, (w, _) in zip(inputs, logits, params)]


def class_weights(loss):
    return torch.tensor(loss.get('class_weight', [1.0] * C),
                        dtype=torch.float64)


def scored_target(loss, labels, score):
    """The target the stock loss scores, from mmpretrain's formulas: the
    (smoothed) one-hot label or Mixup's score, times the class weights.
    Smoothed in float32, with the operations of LabelSmoothLoss."""
    target = F.one_hot(labels, C).float() if score is None else score.float()
    if loss['type'] == 'LabelSmoothLoss':
        eps, mode = loss['label_smooth_val'], loss.get('mode', 'original')
        if mode == 'multi_label':  # 1 - eps on the classes present
            target = torch.where(target > 0, 1 - eps, eps)
        else:
            if mode == 'classy_vision':
                eps = eps / (1 + eps)
            target = target * (1 - eps) + eps / C
    return target.double() * class_weights(loss)


def reference_loss(loss, classifiers, covariances, labels, score):
    """The stock loss of the ISDA bound (DESIGN.md §1, §7), in float64:
    per classifier, the mean over the batch of the (class-weighted)
    cross-entropy of the augmented logits, plus for a soft target (label
    smoothing, Mixup) the bound's extra term; times ``loss_weight``."""
    total = 0
    soft = score is not None or loss['type'] == 'LabelSmoothLoss'
    for (_, logits, weight), cov in zip(classifiers, covariances):
        if soft:
            target = scored_target(loss, labels, score)
            mixture = labels if score is None else score
            augmented, extra = reference_soft_augment(
                logits, target, weight, cov, LAMBDA, mixture)
            per_sample = -(target * augmented.log_softmax(1)).sum(1) + extra
        else:
            augmented = reference_augment(logits, labels, weight, cov,
                                          LAMBDA)
            per_sample = -class_weights(loss)[labels] * augmented.log_softmax(
                1).gather(1, labels[:, None])[:, 0]
        total = total + loss.get('loss_weight', 1.0) * per_sample.mean()
    return total


@contextlib.contextmanager
def input_grads(layers):
    """The live inputs of ``layers``, kept with their gradients."""
    live = [[] for _ in layers]

    def keeper(store):
        def keep(module, args):
            args[0].retain_grad()
            store.append(args[0])
        return keep

    handles = [layer.register_forward_pre_hook(keeper(store))
               for layer, store in zip(layers, live)]
    try:
        yield live
    finally:
        for handle in handles:
            handle.remove()


def check_statistics(estimator, features, targets, full):
    """The estimator holds the float64 reference statistics of every
    feature its classifier received so far."""
    batches = list(zip(features, targets))
    if targets[0].is_floating_point():  # Mixup: p_j towards class j
        mean, cov, weight = reference_weighted_statistics(batches, C, full)
        count = sum((t > 0).long().sum(0) for t in targets)
    else:
        mean, cov, count = reference_statistics(batches, C, full=full)
        weight = count.double()
    tight = dict(rtol=1e-10, atol=1e-12)
    assert torch.equal(estimator.count, count)
    torch.testing.assert_close(estimator.weight_sum, weight, **tight)
    torch.testing.assert_close(estimator.mean, mean, **tight)
    torch.testing.assert_close(estimator.covariance, cov, **tight)
    return cov


REFERENCE_CASES = [(kind, covariance, loss)
                   for kind in TWINS for covariance in ('full', 'diagonal')
                   for loss in ('ce', 'smooth', 'mixup')] + [
    ('LinearClsHead', covariance, loss) for covariance in ('full', 'diagonal')
    for loss in ('mixup-soft-smooth', 'multilabel-smooth', 'mixup-use-soft')]


@pytest.mark.parametrize(
    'kind, covariance, loss', REFERENCE_CASES,
    ids=['-'.join(case) for case in REFERENCE_CASES])
def test_loss_matches_reference(kind, covariance, loss):
    """Two batches through the head: after each, the statistics, the loss
    and its gradients (classifier weights, the classifiers' inputs) are
    those of the float64 reference on the features the final layers
    received."""
    mixed = loss.startswith('mixup')
    loss = LOSSES[loss]
    _, head = build_pair(kind, loss, TWINS, lambda0=LAMBDA,
                         covariance=covariance)
    head = head.double()
    layers = final_layers(kind, head)
    full = covariance == 'full'
    seen = [[] for _ in owners(head)]  # each estimator's features so far
    targets = []
    for _ in range(2):
        feats = feats_for(kind, dtype=torch.float64)
        for x in leaves(feats):
            x.requires_grad_()
        data = samples(mixed=mixed)
        head.zero_grad()
        with contextlib.ExitStack() as stack:
            captured = [stack.enter_context(layer_inputs(layer))
                        for layer in layers]
            live = stack.enter_context(input_grads(layers))
            losses = head.loss(feats, data)
        losses['loss'].backward()
        assert losses['isda_lambda'] == LAMBDA
        assert [len(c) for c in captured] == [1] * len(layers)
        labels = torch.cat([s.gt_label for s in data])
        score = (torch.stack([s.gt_score for s in data]).double()
                 if mixed else None)
        targets.append(labels if score is None else score)

        inputs = [c[0].requires_grad_() for c in captured]
        params = [(layer.weight.detach().clone().requires_grad_(),
                   layer.bias.detach().clone()) for layer in layers]
        classifiers = reference_classifiers(kind, inputs, params)
        covariances = []
        for owner, (x, _, _), store in zip(owners(head), classifiers, seen):
            store.append(x.detach())
            covariances.append(check_statistics(
                owner.isda.estimator, store, targets, full))
        want = reference_loss(loss, classifiers, covariances, labels, score)
        want.backward()
        tight = dict(rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(losses['loss'], want, **tight)
        for layer, (weight, _) in zip(layers, params):
            torch.testing.assert_close(layer.weight.grad, weight.grad,
                                       **tight)
        for kept, x in zip(live, inputs):
            torch.testing.assert_close(kept[0].grad, x.grad, **tight)


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('kind', TWINS)
@pytest.mark.parametrize('loss', ['ce', 'mixup'])
def test_autocast_forward_backward(kind, covariance, loss):
    """Forward and backward under CPU bfloat16 autocast: finite gradients
    and a loss close to float32's."""
    _, head = build_pair(kind, LOSSES[loss], TWINS, lambda0=LAMBDA,
                         covariance=covariance)
    half = copy.deepcopy(head)
    feats, data = feats_for(kind), samples(mixed=loss == 'mixup')
    want = head.loss(feats, copy.deepcopy(data))['loss']
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = half.loss(feats, copy.deepcopy(data))['loss']
        got.backward()
    grads = [p.grad for p in half.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    for layer in final_layers(kind, half):
        assert layer.weight.grad.abs().sum() > 0
    torch.testing.assert_close(got.float(), want, rtol=3e-2, atol=1e-2)


@pytest.mark.parametrize('key', HEADS)
@pytest.mark.parametrize('loss', ['ce', 'smooth'])
@pytest.mark.parametrize('mixed', [False, True], ids=['hard', 'mixup'])
def test_lambda0_zero_gives_stock_loss(key, loss, mixed):
    stock, head = build_pair(key, LOSSES[loss], lambda0=0.0)
    feats, data = feats_for(key), samples(mixed=mixed)
    got = head.loss(feats, copy.deepcopy(data))
    want = stock.loss(feats, copy.deepcopy(data))
    assert torch.equal(got['loss'], want['loss'])
    assert got['isda_lambda'] == 0
    for owner in owners(head):  # the statistics took the batch all the same
        assert owner.isda.estimator.weight_sum.sum() == N


def assert_same_predictions(*heads, feats):
    predictions = [h.eval().predict(feats) for h in heads]
    for got in predictions[1:]:
        for a, b in zip(got, predictions[0]):
            assert torch.equal(a.pred_score, b.pred_score)


@pytest.mark.parametrize('key', HEADS)
def test_predict_is_stock(key):
    stock, head = build_pair(key, lambda0=2.0)
    feats, data = feats_for(key), samples()
    # The same batch through both: BatchNorm's running statistics move.
    stock.loss(feats, copy.deepcopy(data))
    head.loss(feats, copy.deepcopy(data))
    assert_same_predictions(stock, head, feats=feats)


@pytest.mark.parametrize('key', HEADS)
def test_checkpoint_loads_into_stock_head(key, tmp_path):
    _, head = build_pair(key, lambda0=1.0)
    head.loss(feats_for(key), samples())
    state = head.state_dict()
    assert 'isda.estimator.covariance' in state
    if stock_type(key) == 'ConformerHead':
        assert state['isda_others.0.isda.estimator.count'].sum() == N
    save_checkpoint(state, str(tmp_path / 'isda.pth'))
    stock = MODELS.build(dict(type=stock_type(key), **HEADS[key]))
    load_checkpoint(stock, str(tmp_path / 'isda.pth'))
    assert_same_predictions(head, stock, feats=feats_for(key))


def tiny_classifier(key, mixed):
    """A small ImageClassifier of stock parts around the ISDA head."""
    kind = stock_type(key)
    head = dict(HEADS[key], type='ISDA' + kind, lambda0=1.0)
    if kind == 'DeiTClsHead':
        backbone = dict(type='DistilledVisionTransformer', img_size=32,
                        patch_size=16, arch=dict(
                            embed_dims=IN, num_layers=1, num_heads=2,
                            feedforward_channels=8))
        neck, channels = None, 3
    elif kind == 'ConformerHead':  # conv: base_channels * 4 channels
        backbone = dict(type='Conformer', base_channels=4, arch=dict(
            embed_dims=8, depths=3, num_heads=2, channel_ratio=1))
        neck, channels = None, 3
        head['in_channels'] = [16, 8]
    else:
        backbone = dict(type='LeNet5', num_classes=-1)
        neck, channels = dict(type='GlobalAveragePooling'), 1
        head['in_channels'] = 120
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=backbone, neck=neck, head=head,
        data_preprocessor=dict(num_classes=C, mean=[127.5] * channels,
                               std=[127.5] * channels, to_rgb=False),
        train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8),
                                 dict(type='CutMix', alpha=1.0)])
        if mixed else None))
    return model, channels


@pytest.mark.parametrize('key', HEADS)
@pytest.mark.parametrize('mixed', [False, True], ids=['hard', 'mixup'])
def test_one_training_step(key, mixed):
    model, channels = tiny_classifier(key, mixed)
    model.train()
    batch = dict(inputs=[torch.randint(256, (channels, 32, 32),
                                       dtype=torch.uint8) for _ in range(6)],
                 data_samples=samples(6))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = copy.deepcopy(model.head.state_dict())
    log = model.train_step(batch, optim)
    assert torch.isfinite(log['loss']) and log['isda_lambda'] == 1.0
    for owner in owners(model.head):
        assert owner.isda.estimator.weight_sum.sum().item() == pytest.approx(6)
    after = model.head.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values()
               if v.is_floating_point())
    assert not torch.equal(after['isda.estimator.mean'],
                           before['isda.estimator.mean'])
    weight = next(k for k in after if k.endswith('weight')
                  and 'isda' not in k and after[k].dim() == 2)
    assert not torch.equal(after[weight], before[weight])  # a step was taken


@pytest.mark.parametrize('name', REFUSED_HEADS)
def test_heads_without_a_bound_are_refused(name):
    with pytest.raises(ValueError) as error:
        MODELS.build(dict(type=f'ISDA{name}', num_classes=C,
                          in_channels=IN))
    message = str(error.value)
    assert message == f'ISDA{name}: {name} {REFUSED_HEADS[name]}'
    assert '. ' not in message  # one sentence


@pytest.mark.parametrize('kind', ['LeViTClsHead', 'EfficientFormerClsHead'])
def test_distillation_heads_mmpretrain_cannot_train_are_refused(kind):
    cfg = dict(type=kind, num_classes=C, in_channels=IN, distillation=True)
    stock = MODELS.build(cfg)
    with pytest.raises(NotImplementedError):
        stock.loss(feats_for(kind), samples())
    with pytest.raises(ValueError, match=re.escape(
            f'ISDA{kind}: mmpretrain cannot train {kind} with '
            'distillation=True')):
        MODELS.build(dict(cfg, type='ISDA' + kind))

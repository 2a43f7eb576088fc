"""The heads whose classifier differs from LinearClsHead's: DeiT (two
tokens, a mean of two classifiers), LeViT (BatchNorm1d, then the linear
layer), EfficientFormer, Conformer (two classifiers, two losses) and Vig;
and the classification heads ISDA refuses."""
import copy
import re

import pytest
import torch
import torch.nn.functional as F
from isda_reference import reference_augment, reference_soft_augment
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

HEADS = {
    'DeiTClsHead': dict(num_classes=C, in_channels=IN),
    'DeiTClsHead-hidden': dict(num_classes=C, in_channels=IN, hidden_dim=5),
    'LeViTClsHead': dict(num_classes=C, in_channels=IN, distillation=False),
    'EfficientFormerClsHead': dict(num_classes=C, in_channels=IN,
                                   distillation=False),
    'ConformerHead': dict(num_classes=C, in_channels=[IN, 5]),
    'VigClsHead': dict(num_classes=C, in_channels=IN, hidden_dim=5),
}
LOSSES = {
    'ce': dict(type='CrossEntropyLoss', loss_weight=0.7,
               class_weight=[1.0, 2.0, 0.5, 1.5]),
    'smooth': dict(type='LabelSmoothLoss', label_smooth_val=0.1),
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


def feats_for(key, n=N):
    kind = stock_type(key)
    if kind == 'DeiTClsHead':  # (class token, distillation token)
        return ([torch.randn(n, IN), torch.randn(n, IN)], )
    if kind == 'ConformerHead':  # (conv feature, class token)
        return ([torch.randn(n, IN), torch.randn(n, 5)], )
    return (torch.randn(n, IN), )


def samples(n=N, mixed=False):
    data = [DataSample().set_gt_label(y)
            for y in torch.randint(C, (n, )).tolist()]
    if mixed:  # as Mixup leaves them: one mu per batch
        onehot = F.one_hot(torch.cat([s.gt_label for s in data]), C).float()
        for s, score in zip(data, 0.7 * onehot + 0.3 * onehot.roll(1, 0)):
            s.set_gt_score(score)
    return data


def build_pair(key, loss=LOSSES['ce'], **isda):
    cfg = dict(type=stock_type(key), **HEADS[key], loss=loss)
    stock = MODELS.build(cfg)
    head = MODELS.build(dict(cfg, type='ISDA' + cfg['type'], **isda))
    head.load_state_dict({**head.state_dict(), **stock.state_dict()})
    return stock, head


def owners(head):
    """Each classifier's ISDA state: the head's, then the others'."""
    return [head, *head.isda_others]


def reference_classifiers(key, head, feats):
    """``(features, logits, weight)`` per classifier, written from the stock
    heads' forward: ISDA translates the features of each."""
    x = head.pre_logits(feats)
    kind = stock_type(key)
    if kind == 'DeiTClsHead':
        fc, dist = head.layers.head, head.layers.head_dist
        return [(x[0], (fc(x[0]) + dist(x[1])) / 2, fc.weight / 2)]
    if kind == 'ConformerHead':
        return [(f, fc(f), fc.weight) for f, fc in zip(
            x, (head.conv_cls_head, head.trans_cls_head))]
    if kind == 'LeViTClsHead':
        x, fc = head.head.bn(x), head.head.linear
    else:
        fc = head.head if kind == 'EfficientFormerClsHead' else head.fc2
    return [(x, fc(x), fc.weight)]


@pytest.mark.parametrize('key', HEADS)
@pytest.mark.parametrize('loss', LOSSES)
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


@pytest.mark.parametrize('key', HEADS)
@pytest.mark.parametrize('mixed', [False, True], ids=['hard', 'mixup'])
def test_loss_is_the_bound_of_each_classifier(key, mixed):
    loss = dict(type='CrossEntropyLoss')
    stock, head = build_pair(key, loss, lambda0=1.5)
    stock, head = stock.double(), head.double()
    feats = tuple([x.double() for x in f] if isinstance(f, list) else
                  f.double() for f in feats_for(key))
    data = samples(mixed=mixed)
    got = head.loss(feats, copy.deepcopy(data))['loss']
    labels = torch.cat([s.gt_label for s in data])
    score = (torch.stack([s.gt_score for s in data]).double() if mixed
             else F.one_hot(labels, C).double())
    want = 0
    classifiers = reference_classifiers(key, head, feats)
    for owner, (features, logits, weight) in zip(owners(head), classifiers):
        est = owner.isda.estimator
        torch.testing.assert_close(est.weight_sum, score.sum(0))
        cov = est.covariance
        if mixed:
            out, extra = reference_soft_augment(logits, score, weight, cov,
                                                1.5, score)
            want = want + (-(score * out.log_softmax(1)).sum(1)
                           + extra).mean()
        else:
            want = want + F.cross_entropy(
                reference_augment(logits, labels, weight, cov, 1.5), labels)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    assert not torch.equal(got, stock.loss(feats, data)['loss'])
    # The reference's logits are the stock head's.
    stock.load_state_dict(head.state_dict(), strict=False)
    head.eval(), stock.eval()
    plain = sum(logits for _, logits, _ in reference_classifiers(
        key, head, feats))
    scores = stock(feats)
    torch.testing.assert_close(
        plain, sum(scores) if isinstance(scores, tuple) else scores)


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

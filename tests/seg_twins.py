"""Every mmseg ``ISDA<Head>`` twin in a tiny configuration, its batches, and
the float64 reference of its statistics and loss.

The reference never reads what the adapter says it augmented: it takes the
input of each final classifier as :func:`capture.layer_inputs` records it,
the labels brought to the classifier's resolution here (nearest sampling,
DESIGN.md §1), :func:`isda_reference.reference_statistics` of both batches,
:func:`isda_reference.reference_augment` with that covariance, and the stock
head's own ``loss_by_feat`` on the result (its resize, sampler, losses,
class weights, ignore index, loss weights and reductions).
"""
import contextlib
import copy
from typing import Callable, NamedTuple, Optional, Tuple

import torch
from capture import layer_inputs
from isda_reference import reference_augment, reference_statistics
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.decode_heads.point_head import point_sample
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import isda_mm  # noqa: F401
from isda_mm.segmentation import ISDADecodeHeadMixin

C, IN, A, IGNORE, N, LABEL = 4, 8, 6, 255, 2, 16
RATIO = 2.0  # lambda0; outside a runner lambda = lambda0
OHEM = dict(type='OhemCrossEntropy', thres=0.9, min_kept=10)
# The toolkit's CE with a loss weight and its other averaging rule.
LOSS = dict(type='CrossEntropyLoss', loss_weight=0.7, avg_non_ignore=True)
POINT_TRAIN = ConfigDict(num_points=12, oversample_ratio=2,
                         importance_sample_ratio=0.5)


class Spec(NamedTuple):
    """A twin's stock arguments, the loss arguments before the samples (a
    function of the dtype and batch size), the classifier behind each
    forward output (None: an output of no classifier), train_cfg, the dtype
    the toolkit lets it run in, and other loss arguments for the autocast
    test."""
    args: dict
    inputs: Callable[[torch.dtype, int], tuple]
    outputs: Tuple[Optional[str], ...] = ('conv_seg', )
    train_cfg: Optional[ConfigDict] = None
    dtype: torch.dtype = torch.float64
    autocast_inputs: Optional[Callable[[torch.dtype, int], tuple]] = None


def maps(*sizes, channels=(IN, )):
    """The loss's ``inputs``: feature maps of these sizes."""
    channels = channels * len(sizes) if len(channels) == 1 else channels

    def make(dtype, n):
        return (tuple(torch.randn(n, c, s, s, dtype=dtype)
                      for c, s in zip(channels, sizes)), )

    return make


def with_prev(make, size):
    """A cascade stage's ``(inputs, prev_output)``."""
    return lambda dtype, n: (*make(dtype, n),
                             torch.randn(n, C, size, size, dtype=dtype))


def vit_tokens(size):
    """DPTHead's four ``[patch tokens, class token]`` levels."""

    def make(dtype, n):
        return ([[torch.randn(n, IN, size, size, dtype=dtype),
                  torch.randn(n, IN, dtype=dtype)] for _ in range(4)], )

    return make


# The heads whose forward ends in ``return self.cls_seg(x)``.
PLAIN = {
    'ANNHead': Spec(dict(in_channels=[IN, IN], in_index=[0, 1], channels=A,
                         project_channels=4, key_pool_scales=(1, 2),
                         dropout_ratio=0.1),  # its forward calls dropout
                    maps(4, 4)),
    'APCHead': Spec(dict(in_channels=IN, channels=A, pool_scales=(1, 2)),
                    maps(4)),
    'ASPPHead': Spec(dict(in_channels=IN, channels=A, dilations=(1, 2)),
                     maps(4)),
    # CrissCrossAttention needs channels // 8 >= 1.
    'CCHead': Spec(dict(in_channels=IN, channels=8, recurrence=1), maps(4)),
    'DMHead': Spec(dict(in_channels=IN, channels=A, filter_sizes=(1, 3)),
                   maps(4)),
    'DNLHead': Spec(dict(in_channels=IN, channels=A), maps(4)),
    # Four levels of 1 x 1 tokens become a 16 x 16 map (a narrow classifier
    # keeps the reference quick). Under bfloat16 autocast the tokens are
    # 2 x 2: torch 2.14's CPU bfloat16 conv2d backward gives the last
    # level's stride-2 3 x 3 conv garbage (even NaN) weight gradients at
    # padded taps when its input is 1 x 1, with or without ISDA.
    'DPTHead': Spec(dict(in_channels=[IN] * 4, in_index=[0, 1, 2, 3],
                         input_transform='multiple_select', channels=3,
                         embed_dims=IN, post_process_channels=[4] * 4),
                    vit_tokens(1), autocast_inputs=vit_tokens(2)),
    'DepthwiseSeparableASPPHead': Spec(
        dict(in_channels=IN, channels=A, dilations=(1, 2), c1_in_channels=IN,
             c1_channels=4, in_index=1), maps(4, 2)),
    'DepthwiseSeparableFCNHead': Spec(dict(in_channels=IN, channels=A),
                                      maps(4)),
    'EMAHead': Spec(dict(in_channels=IN, ema_channels=4, channels=A,
                         num_bases=2, num_stages=2), maps(4)),
    'FCNHead': Spec(dict(in_channels=IN, channels=A, num_convs=1), maps(4)),
    'FPNHead': Spec(dict(in_channels=[IN, IN], in_index=[0, 1],
                         feature_strides=[4, 8], channels=A), maps(4, 2)),
    'GCHead': Spec(dict(in_channels=IN, channels=A), maps(4)),
    'ISAHead': Spec(dict(in_channels=IN, channels=A, isa_channels=4,
                         down_factor=(2, 2)), maps(4)),
    # Its image pool is a 49 x 49 average pool of the last level.
    'LRASPPHead': Spec(dict(in_channels=(IN, IN, IN), in_index=(0, 1, 2),
                            input_transform='multiple_select', channels=A,
                            branch_channels=(4, 4)), maps(4, 4, 49)),
    'LightHamHead': Spec(dict(in_channels=[IN, IN], in_index=[0, 1],
                              channels=A, ham_channels=8, ham_kwargs=dict(
                                  MD_R=4, train_steps=2, eval_steps=2)),
                         maps(4, 2)),
    'NLHead': Spec(dict(in_channels=IN, channels=A), maps(4)),
    'PSAHead': Spec(dict(in_channels=IN, channels=A, mask_size=(3, 3)),
                    maps(4)),
    'PSPHead': Spec(dict(in_channels=IN, channels=A, pool_scales=(1, 2)),
                    maps(4)),
    'SETRMLAHead': Spec(dict(in_channels=(IN, ) * 4, in_index=(0, 1, 2, 3),
                             channels=8, mla_channels=2, up_scale=2),
                        maps(2, 2, 2, 2)),
    'SETRUPHead': Spec(dict(in_channels=IN, channels=A, num_convs=1,
                            up_scale=2, kernel_size=1), maps(2)),
    'SegformerHead': Spec(dict(in_channels=[IN, IN], in_index=[0, 1],
                               channels=A), maps(4, 2)),
    'UPerHead': Spec(dict(in_channels=[IN, IN], in_index=[0, 1], channels=A,
                          pool_scales=(1, 2)), maps(4, 2)),
}
# Cascade stages and heads with their own loss_by_feat.
MORE = {
    'OCRHead': Spec(dict(in_channels=IN, channels=A, ocr_channels=4),
                    with_prev(maps(4), 4)),
    'EncHead': Spec(dict(in_channels=[IN, IN], in_index=[0, 1], channels=A,
                         num_codes=4), maps(4, 4), ('conv_seg', None)),
    'DAHead': Spec(dict(in_channels=IN, channels=A, pam_channels=4), maps(4),
                   ('conv_seg', 'pam_conv_seg', 'cam_conv_seg')),
    'DDRHead': Spec(dict(in_channels=IN, channels=A,
                         loss_decode=[OHEM, dict(OHEM, loss_weight=0.4)]),
                    maps(4, 4, channels=(IN // 2, IN)),
                    ('conv_seg', 'aux_cls_seg')),
    'PIDHead': Spec(dict(in_channels=IN, channels=A, loss_decode=[
        dict(type='CrossEntropyLoss', loss_weight=0.4), OHEM,
        dict(type='BoundaryLoss', loss_weight=20.0), OHEM]),
                    maps(4, 4, 4, channels=(IN // 2, IN, IN // 2)),
                    ('p_cls_seg', 'conv_seg', None)),
    # mmcv's point_sample needs the points' dtype, float32, everywhere.
    'PointHead': Spec(dict(in_channels=[IN], in_index=[0], channels=A,
                           num_fcs=2), with_prev(maps(4), 4), ('fc_seg', ),
                      POINT_TRAIN, torch.float32),
}
SPECS = {**PLAIN, **MORE}
# Variants of the loss path, on FCNHead: a sampler, class weights (mmseg
# 1.2.2 indexes them by the ignore label, so no pixel is ignored), and a
# loss list whose Dice term scores the plain logits.
VARIANTS = {
    'ohem': dict(sampler=dict(type='OHEMPixelSampler', thresh=0.7,
                              min_kept=20)),
    'class-weight': dict(loss_decode=dict(
        type='CrossEntropyLoss', loss_weight=0.7,
        class_weight=[1.0, 2.0, 0.5, 1.0])),
    'ce-dice': dict(loss_decode=[dict(type='CrossEntropyLoss'),
                                 dict(type='DiceLoss', loss_weight=3.0)]),
}
# Loss entries the adapter computes from the plain logits.
PLAIN_SCORED = ('loss_dice', )


def registered_twins():
    """Stock names of the ISDA twins in mmseg's registry (refusals, which
    are functions, and ``ISDALoss`` left out)."""
    return {name[4:] for name, cls in MODELS.module_dict.items()
            if name.startswith('ISDA') and isinstance(cls, type)
            and issubclass(cls, ISDADecodeHeadMixin)}


@contextlib.contextmanager
def default_dtype(dtype):
    """Tensors a head makes itself (LightHam's random bases) follow it."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def build_pair(head_type, variant=None, dtype=None, **isda):
    """The stock head and its twin, with the same weights, in ``dtype``
    (the spec's by default)."""
    spec = SPECS[head_type]
    dtype = dtype or spec.dtype
    args = {'loss_decode': LOSS, 'dropout_ratio': 0, **spec.args,
            'num_classes': C, **VARIANTS.get(variant, {})}
    with default_dtype(dtype):
        stock = MODELS.build(dict(type=head_type, **args))
        twin = MODELS.build(dict(type='ISDA' + head_type, **args, **isda))
    if head_type == 'PIDHead':  # every pixel on a boundary: loss_sem_bd > 0
        torch.nn.init.constant_(stock.d_cls_seg.bias, 3.0)
    missing, unexpected = twin.load_state_dict(stock.state_dict(),
                                               strict=False)
    assert not unexpected and all('isda' in k for k in missing)
    return stock.to(dtype), twin.to(dtype)


def make_batch(head_type, dtype=None, ignore=True, autocast=False):
    """``(loss arguments before the samples, samples)``; labels are
    LABEL x LABEL with their first rows ignored."""
    spec = SPECS[head_type]
    make = spec.autocast_inputs if autocast and spec.autocast_inputs \
        else spec.inputs
    inputs = make(dtype or spec.dtype, N)
    samples = []
    for _ in range(N):
        labels = torch.randint(C, (1, LABEL, LABEL))
        if ignore:
            labels[:, :3] = IGNORE
        edges = (torch.rand(1, LABEL, LABEL) > 0.8).long()  # PIDNet's
        sample = SegDataSample(gt_sem_seg=PixelData(data=labels),
                               gt_edge_map=PixelData(data=edges))
        sample.set_metainfo(dict(img_shape=(LABEL, LABEL),
                                 pad_shape=(LABEL, LABEL)))
        samples.append(sample)
    return inputs, samples


def head_loss(head, head_type, batch, points=None):
    """``head.loss`` on the batch; PointHead's sampled points are appended
    to ``points``."""
    inputs, samples = batch
    if head_type == 'PointHead':
        sample_points = type(head).get_points_train

        def get_points_train(*args, **kwargs):
            points.append(sample_points(head, *args, **kwargs))
            return points[-1]

        head.get_points_train = get_points_train
    dtype = next(head.parameters()).dtype
    try:
        with default_dtype(dtype):
            return head.loss(*inputs, copy.deepcopy(samples),
                             SPECS[head_type].train_cfg)
    finally:
        head.__dict__.pop('get_points_train', None)


def labels_at(samples, features, points=None):
    """The labels of a classifier's samples, flattened as
    :func:`as_rows` flattens its features: nearest sampling, by hand, for
    maps; PointHead's points sampled as its loss samples them."""
    labels = torch.stack([s.gt_sem_seg.data for s in samples])
    if points is not None:
        return point_sample(labels.float(), points.float(),
                            mode='nearest').long().flatten()
    rows, cols = (torch.arange(n) * LABEL // n for n in features.shape[2:])
    return labels[:, 0][:, rows][:, :, cols].flatten()


def as_rows(x):
    """(N, A, *S) -> (N * prod(S), A), a sample per row."""
    return x.flatten(2).transpose(1, 2).reshape(-1, x.shape[1])


def estimator(head, name):
    """The statistics of classifier ``name``."""
    isda = head.isda_branches[name] if name in head.isda_branches \
        else head.isda
    return isda.estimator


def named(key):
    """An ``assert_close`` message that names what was compared."""
    return lambda message: f'{key}: {message}'


def loss_sum(losses):
    return sum(v for k, v in losses.items() if 'loss' in k)


def reference_losses(stock, head_type, twin, batch, features, labels,
                     covariances, weights, points=None):
    """The stock ``loss_by_feat`` of reference logits: augmented for the
    cross-entropy terms, plain for accuracies and ``PLAIN_SCORED``.

    Logits are ``W x + b`` of the captured features ``x`` with the leaf
    ``weights``; outputs of no classifier (EncNet's SE logits, PIDNet's
    boundary map) come from the stock forward on the same batch.
    """
    spec = SPECS[head_type]
    inputs, samples = batch
    stock_outputs = stock(*inputs) if None in spec.outputs else None
    augmented, plain = [], []
    for i, name in enumerate(spec.outputs):
        if name is None:
            augmented.append(stock_outputs[i])
            plain.append(stock_outputs[i])
            continue
        x, weight = features[name].double(), weights[name].flatten(1)
        bias = getattr(twin, name).bias.detach().double()
        logits = weight @ x.flatten(2) + bias[:, None]
        rows = reference_augment(logits.transpose(1, 2).reshape(-1, C),
                                 labels[name], weight, covariances[name],
                                 RATIO, IGNORE)
        shape = (x.shape[0], C, *x.shape[2:])
        augmented.append(rows.reshape(x.shape[0], -1, C).transpose(
            1, 2).reshape(shape))
        plain.append(logits.reshape(shape))

    def score(outputs):
        outputs = tuple(outputs) if len(outputs) > 1 else outputs[0]
        extra = () if points is None else (points, )
        return stock.loss_by_feat(outputs, *extra, copy.deepcopy(samples))

    scored, measured = score(augmented), score(plain)
    return {k: measured[k] if 'acc' in k or k in PLAIN_SCORED else v
            for k, v in scored.items()}


def tolerances(dtype):
    """float64 heads are checked to rounding; float32 ones (PointHead) to
    float32 rounding of the same sums."""
    if dtype == torch.float64:
        return dict(rtol=1e-9, atol=1e-12)
    return dict(rtol=1e-5, atol=1e-6)


def check_loss_matches_reference(head_type, covariance, variant=None):
    """Two batches through the twin's ``loss``; then each classifier's
    statistics against the reference of its captured inputs, the second
    batch's losses against the reference losses, and each classifier
    weight's gradient against the reference's."""
    spec = SPECS[head_type]
    stock, twin = build_pair(head_type, variant, lambda0=RATIO,
                             covariance=covariance)
    names = [name for name in spec.outputs if name]
    assert sorted(twin.isda_classifiers) == sorted(names)
    batches = [make_batch(head_type, ignore=variant != 'class-weight')
               for _ in range(2)]
    points = []
    with contextlib.ExitStack() as stack:
        seen = {name: stack.enter_context(layer_inputs(getattr(twin, name)))
                for name in names}
        losses = [head_loss(twin, head_type, batch, points)
                  for batch in batches][-1]
    tol = tolerances(spec.dtype)
    labels, covariances = {}, {}
    for name in names:
        assert len(seen[name]) == 2, name  # one call per loss
        labels[name] = [labels_at(batch[1], x, p) for batch, x, p in zip(
            batches, seen[name], points or [None] * 2)]
        mean, cov, count = reference_statistics(
            [(as_rows(x), y) for x, y in zip(seen[name], labels[name])], C,
            IGNORE, full=covariance == 'full')
        est = estimator(twin, name)
        assert torch.equal(est.count, count), name
        torch.testing.assert_close(est.mean.double(), mean, **tol,
                                   msg=named(name))
        torch.testing.assert_close(est.covariance.double(), cov, **tol,
                                   msg=named(name))
        covariances[name] = cov

    weights = {name: getattr(twin, name).weight.detach().double().clone()
               .requires_grad_() for name in names}
    want = reference_losses(
        stock, head_type, twin, batches[1],
        {name: seen[name][1] for name in names},
        {name: labels[name][1] for name in names}, covariances, weights,
        points[-1] if points else None)
    assert set(want) <= set(losses)
    for key, value in want.items():
        torch.testing.assert_close(losses[key].double(), value.double(),
                                   **tol, msg=named(key))
    assert losses['isda_lambda'] == RATIO
    twin.zero_grad()
    loss_sum(losses).backward()
    loss_sum(want).backward()
    for name in names:
        torch.testing.assert_close(
            getattr(twin, name).weight.grad.double(), weights[name].grad,
            **tol, msg=named(name))


def check_autocast_forward_backward(head_type, covariance):
    """The twin's loss and its backward under CPU bfloat16 autocast: finite
    gradients, and losses close to the float32 twin's."""
    _, twin = build_pair(head_type, dtype=torch.float32, lambda0=RATIO,
                         covariance=covariance)
    batch = make_batch(head_type, dtype=torch.float32, autocast=True)
    fp32 = copy.deepcopy(twin)
    torch.manual_seed(1)  # LightHam's bases, PointHead's points
    want = head_loss(fp32, head_type, batch, [])
    torch.manual_seed(1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = head_loss(twin, head_type, batch, [])
        loss_sum(got).backward()
    for key, value in want.items():
        if 'loss' in key:
            assert torch.isfinite(got[key]), key
            # bfloat16 rounding moves these tiny losses by < 0.2%; ISDA
            # moves them by 1-15%.
            torch.testing.assert_close(got[key].float(), value, rtol=0.01,
                                       atol=1e-3, msg=named(key))
    for name, param in twin.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), name
    for name in twin.isda_classifiers:
        assert getattr(twin, name).weight.grad is not None, name

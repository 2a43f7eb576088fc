"""Every mmdet ``ISDA<Head>`` twin in a tiny configuration, scored as the
RoI heads score it (``forward``, then ``loss_and_target`` on sampling
results, or ``loss`` directly as ``PISARoIHead`` does), and the float64
reference of its statistics and classification loss.

The reference takes the input of ``fc_cls`` as :func:`capture.layer_inputs`
records it and the targets of the stock ``get_targets``, then
:func:`isda_reference.reference_statistics` of both batches and
:func:`isda_reference.reference_augment` with that covariance, and writes
mmdet's ``CrossEntropyLoss`` out: class weights, label weights, loss weight
and the mean over RoIs of positive weight (``avg_factor``, plus mmdet's
float32 epsilon).
"""
import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from capture import layer_inputs
from isda_reference import reference_augment, reference_statistics
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmengine.config import ConfigDict

import isda_mm  # noqa: F401
from isda_mm.detection import ISDABBoxHeadMixin

C, IN, ROI = 3, 4, 3  # foreground classes; background is label C
BG = C
RATIO = 2.0  # lambda0; outside a runner lambda = lambda0
POSITIVES, NEGATIVES, IMAGES = 5, 4, 2
LOSS_CLS = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.7,
                class_weight=[1.0, 2.0, 0.5, 1.5])
# Positive RoIs weigh 2 (BBoxHead.get_targets; SABL's keeps 1).
TRAIN_CFG = ConfigDict(pos_weight=2.0)


class Spec(NamedTuple):
    """A twin's stock arguments and how its RoI head calls it."""
    args: dict
    double_input: bool = False  # Double-Head: (cls RoIs, reg RoIs)
    shared_feat: bool = False  # SCNet: forward(x, return_shared_feat=True)


SPECS = {
    'BBoxHead': Spec(dict(with_avg_pool=True, in_channels=IN,
                          roi_feat_size=ROI)),
    'ConvFCBBoxHead': Spec(dict(num_shared_convs=1, num_shared_fcs=1,
                                num_cls_fcs=1, in_channels=IN,
                                conv_out_channels=5, fc_out_channels=6,
                                roi_feat_size=ROI)),
    'Shared2FCBBoxHead': Spec(dict(in_channels=IN, fc_out_channels=6,
                                   roi_feat_size=ROI)),
    'Shared4Conv1FCBBoxHead': Spec(dict(in_channels=IN, conv_out_channels=5,
                                        fc_out_channels=6,
                                        roi_feat_size=ROI)),
    'DoubleConvFCBBoxHead': Spec(dict(num_convs=1, num_fcs=1, in_channels=IN,
                                      conv_out_channels=8, fc_out_channels=6,
                                      roi_feat_size=ROI), double_input=True),
    'SCNetBBoxHead': Spec(dict(num_shared_fcs=2, in_channels=IN,
                               fc_out_channels=6, roi_feat_size=ROI,
                               reg_class_agnostic=True), shared_feat=True),
    # Bucketing needs num_buckets = 2 * roi_feat_size.
    'SABLHead': Spec(dict(cls_in_channels=IN, reg_in_channels=IN,
                          roi_feat_size=ROI, cls_out_channels=6,
                          reg_offset_out_channels=4, reg_cls_out_channels=4,
                          bbox_coder=dict(type='BucketingBBoxCoder',
                                          num_buckets=2 * ROI,
                                          scale_factor=1.7))),
}

# The basic heads are tested in test_heads.py, the others in
# test_more_heads.py.
BASIC = ('BBoxHead', 'ConvFCBBoxHead', 'Shared2FCBBoxHead',
         'Shared4Conv1FCBBoxHead', 'DoubleConvFCBBoxHead')
MORE = ('SCNetBBoxHead', 'SABLHead')


def registered_twins():
    """Stock names of the ISDA twins in mmdet's registry (refusals, which
    are functions, and ``ISDALoss`` left out)."""
    return {name[4:] for name, cls in MODELS.module_dict.items()
            if name.startswith('ISDA') and isinstance(cls, type)
            and issubclass(cls, ISDABBoxHeadMixin)}


def build_pair(head_type, dtype=torch.float64, **isda):
    """The stock head and its twin, with the same weights."""
    args = dict(SPECS[head_type].args, num_classes=C, loss_cls=LOSS_CLS)
    stock = MODELS.build(dict(type=head_type, **args))
    twin = MODELS.build(dict(type='ISDA' + head_type, **args, **isda))
    missing, unexpected = twin.load_state_dict(stock.state_dict(),
                                               strict=False)
    assert not unexpected and all('isda' in k for k in missing)
    return stock.to(dtype), twin.to(dtype)


def make_batch(dtype=torch.float64):
    """RoI features, RoIs and the sampling results of IMAGES images: the
    first POSITIVES RoIs of each match a ground-truth box of a random
    class, the NEGATIVES others are background."""
    results = []
    for _ in range(IMAGES):
        corners = torch.rand(POSITIVES + NEGATIVES, 2, dtype=dtype) * 32
        priors = torch.cat([corners, corners + 8 + 16 * torch.rand_like(
            corners)], 1)
        gt_bboxes = priors[:POSITIVES] + torch.randn(POSITIVES, 4,
                                                     dtype=dtype)
        gt_labels = torch.randint(C, (POSITIVES, ))
        gt_inds = torch.cat([torch.arange(1, POSITIVES + 1),
                             torch.zeros(NEGATIVES, dtype=torch.long)])
        labels = torch.cat([gt_labels, torch.full((NEGATIVES, ), -1)])
        assign = AssignResult(POSITIVES, gt_inds, torch.ones(len(gt_inds),
                                                             dtype=dtype),
                              labels)
        results.append(SamplingResult(
            torch.arange(POSITIVES), torch.arange(POSITIVES, len(gt_inds)),
            priors, gt_bboxes, assign, torch.zeros(len(gt_inds),
                                                   dtype=torch.uint8)))
    rois = bbox2roi([r.priors for r in results])
    feats = torch.randn(len(rois), IN, ROI, ROI, dtype=dtype)
    return feats, rois, results


def head_forward(head, head_type, feats):
    """``(cls_score, bbox_pred)`` as the head's RoI head asks for them."""
    spec = SPECS[head_type]
    if spec.double_input:
        return head(feats, feats)
    if spec.shared_feat:
        return head(feats, return_shared_feat=True)[:2]
    return head(feats)


def head_loss(head, head_type, batch, targets=None):
    """The RoI head's bbox loss: ``loss_and_target``, or ``loss`` with
    these ``(labels, label_weights, bbox_targets, bbox_weights)``."""
    feats, rois, results = batch
    cls_score, bbox_pred = head_forward(head, head_type, feats)
    if targets is not None:
        return head.loss(cls_score, bbox_pred, rois, *targets)
    return head.loss_and_target(cls_score, bbox_pred, rois, results,
                                TRAIN_CFG)['loss_bbox']


def named(key):
    """An ``assert_close`` message that names what was compared."""
    return lambda message: f'{key}: {message}'


def loss_sum(losses):
    return sum(v for k, v in losses.items() if 'loss' in k)


def skipped(labels, label_weights, background='exclude'):
    """The labels ISDA sees: -1 for RoIs of no statistics and no term."""
    used = label_weights > 0
    if background == 'exclude':
        used &= labels != BG
    return torch.where(used, labels, -1)


def reference_loss_cls(features, labels, label_weights, skip, weight, bias,
                       covariance, ratio=RATIO, loss_cfg=LOSS_CLS):
    """mmdet's ``loss_cls`` (a softmax ``CrossEntropyLoss``) of the
    reference-augmented logits, in float64."""
    weight, bias = weight.double(), bias.double()
    logits = features.double() @ weight.T + bias
    augmented = reference_augment(logits, skip, weight, covariance, ratio,
                                  ignore_index=-1)
    class_weight = loss_cfg.get('class_weight')
    per_roi = F.cross_entropy(
        augmented, labels, reduction='none',
        weight=None if class_weight is None else logits.new_tensor(
            class_weight))
    avg_factor = max(float((label_weights > 0).sum()), 1.)
    # mmdet's cross_entropy rounds the label weights to float32, and its
    # weight_reduce_loss adds float32's epsilon to avg_factor.
    eps = torch.finfo(torch.float32).eps
    return loss_cfg.get('loss_weight', 1.0) * (
        per_roi * label_weights.float()).sum() / (avg_factor + eps)


def check_loss_matches_reference(head_type, covariance, background='exclude',
                                 label_weights=None):
    """Two batches through the twin; then the statistics against the
    reference of the captured ``fc_cls`` inputs, the second batch's
    ``loss_cls`` and its gradient w.r.t. ``fc_cls.weight`` against the
    reference's, and the other entries against the stock head's.

    ``label_weights`` (a function of the stock targets) makes the call
    ``loss`` with those weights, as PISA does; else ``loss_and_target``.
    """
    stock, twin = build_pair(head_type, lambda0=RATIO, covariance=covariance,
                             background=background)
    batches = [make_batch() for _ in range(2)]
    targets = [list(stock.get_targets(b[2], TRAIN_CFG)) for b in batches]
    if label_weights is not None:
        for t in targets:
            t[1] = label_weights(t[0], t[1])
    with layer_inputs(twin.fc_cls) as seen:
        losses = [head_loss(twin, head_type, b, t if label_weights else None)
                  for b, t in zip(batches, targets)][-1]
    assert len(seen) == 2  # one call per batch

    skips = [skipped(labels, weights, background)
             for labels, weights, *_ in targets]
    mean, cov, count = reference_statistics(zip(seen, skips), C + 1, -1,
                                            full=covariance == 'full')
    est = twin.isda.estimator
    tol = dict(rtol=1e-9, atol=1e-12)
    assert torch.equal(est.count, count)
    torch.testing.assert_close(est.mean, mean, **tol)
    torch.testing.assert_close(est.covariance, cov, **tol)

    weight = twin.fc_cls.weight.detach().clone().requires_grad_()
    labels, weights = targets[1][:2]
    want = reference_loss_cls(seen[1], labels, weights, skips[1], weight,
                              twin.fc_cls.bias.detach(), cov)
    torch.testing.assert_close(losses['loss_cls'], want, **tol)
    assert losses['isda_lambda'] == RATIO
    twin.zero_grad()
    losses['loss_cls'].backward()
    want.backward()
    torch.testing.assert_close(twin.fc_cls.weight.grad, weight.grad, **tol)

    # Box losses and the accuracy: the stock head's on the same batch.
    stock_losses = head_loss(stock, head_type, batches[1],
                             targets[1] if label_weights else None)
    assert set(stock_losses) <= set(losses)
    for key, value in stock_losses.items():
        if key != 'loss_cls':
            torch.testing.assert_close(losses[key], value, rtol=0, atol=0,
                                       msg=named(key))


def check_autocast_forward_backward(head_type, covariance):
    """``loss_and_target`` and its backward under CPU bfloat16 autocast:
    finite gradients, losses close to the float32 twin's."""
    _, twin = build_pair(head_type, torch.float32, lambda0=RATIO,
                         covariance=covariance)
    batch = make_batch(torch.float32)
    want = head_loss(copy.deepcopy(twin), head_type, batch)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = head_loss(twin, head_type, batch)
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
    assert twin.fc_cls.weight.grad is not None


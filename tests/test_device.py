"""The core and the head twins on the device named by ``ISDA_TEST_DEVICE``.

``ISDA_TEST_DEVICE=cuda python -m pytest tests/test_device.py`` runs on a
GPU what the rest of the suite runs on the CPU (``cpu``, the default, runs
it here as part of the suite; ``tools/gpu_check.sh`` runs it on the device
it is given). Every quantity is compared with an independent float64
reference computed on the CPU (:mod:`isda_reference`, or the head itself in
float64 on the CPU), in float32 and under ``torch.autocast`` with float16
and bfloat16:

- the core: :class:`~isda_mm.core.CovarianceEstimator` (full, diagonal,
  packed), :func:`~isda_mm.core.isda_augment`,
  :func:`~isda_mm.core.isda_augment_soft` and :class:`~isda_mm.core.ISDALoss`
  (loss and classifier gradient);
- the ISDA twins of the heads the toolkits' head tests build (mmpretrain,
  mmseg, mmdet): losses, gradients and statistics. Under autocast the loss
  must be finite and near the float64 one, and the statistics stay float32.

float32 comparisons run with TF32 off (cuDNN convolutions use it by default
on Ampere and later, which is a precision choice, not an ISDA error).
"""
import copy
import os

import pytest
import torch
import torch.nn.functional as F
from isda_reference import (
    reference_augment,
    reference_soft_augment,
    reference_statistics,
)

from isda_mm.core import (
    CovarianceEstimator,
    ISDALoss,
    isda_augment,
    isda_augment_soft,
)

DEVICE = torch.device(os.environ.get('ISDA_TEST_DEVICE', 'cpu'))
if DEVICE.type == 'cuda' and not torch.cuda.is_available():
    pytest.skip('ISDA_TEST_DEVICE=cuda but torch sees no CUDA device',
                allow_module_level=True)

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
# Autocast precisions: loss against the float64 loss, relative tolerance.
AMP_RTOL = {'fp16': 2e-2, 'bf16': 5e-2}
C, A, N, IGNORE = 4, 5, 16, -1


@pytest.fixture(autouse=True)
def _no_tf32():
    matmul, conv = (torch.backends.cuda.matmul.allow_tf32,
                    torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = conv


def autocast(precision):
    """Autocast to ``precision`` on the device, or nothing for fp32."""
    dtype = PRECISIONS[precision]
    return torch.autocast(DEVICE.type, dtype=dtype, enabled=dtype is not None)


def cpu64(x):
    return x.detach().cpu().double()


def make_batches(sizes, seed=0):
    """Features around class centres, with some ignored labels (CPU)."""
    gen = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(C, A, generator=gen)
    batches = []
    for n in sizes:
        labels = torch.randint(C, (n, ), generator=gen)
        features = centres[labels] + torch.randn(n, A, generator=gen)
        labels[torch.rand(n, generator=gen) < 0.2] = IGNORE
        batches.append((features, labels))
    return batches


def covariances(est):
    if est.packed:
        return torch.stack([est.class_covariance(c) for c in range(C)])
    return est.covariance


# ---------------------------------------------------------------- the core


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('kind', ['full', 'diagonal', 'packed'])
def test_estimator(kind, precision):
    est = CovarianceEstimator(
        C, A, 'diagonal' if kind == 'diagonal' else 'full',
        ignore_index=IGNORE, packed=kind == 'packed').to(DEVICE)
    seen = []
    for x, labels in make_batches([24, 8, 40]):
        # The features a network makes under autocast (half precision).
        with autocast(precision):
            features = F.linear(x.to(DEVICE), torch.eye(A, device=DEVICE))
            est.update(features, labels.to(DEVICE))
        seen.append((cpu64(features), labels))
    mean, cov, count = reference_statistics(seen, C, IGNORE,
                                            full=kind != 'diagonal')
    assert est.mean.dtype == est.covariance.dtype == torch.float32
    assert torch.equal(est.count.cpu(), count)
    torch.testing.assert_close(cpu64(est.mean), mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cpu64(covariances(est)), cov, rtol=1e-5,
                               atol=1e-5)


def augment_inputs(kind, seed=0):
    """Features, labels, classifier and covariances (CPU, float64)."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(N, A, generator=gen, dtype=torch.float64)
    labels = torch.randint(C, (N, ), generator=gen)
    labels[:3] = IGNORE
    weight = torch.randn(C, A, generator=gen, dtype=torch.float64)
    bias = torch.randn(C, generator=gen, dtype=torch.float64)
    root = torch.randn(C, A, A, generator=gen, dtype=torch.float64) / A
    cov = root @ root.transpose(1, 2)
    if kind == 'diagonal':
        cov = torch.diagonal(cov, dim1=1, dim2=2).clone()
    return features, labels, weight, bias, cov


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('kind', ['full', 'diagonal'])
def test_augment(kind, precision):
    features, labels, weight, bias, cov = augment_inputs(kind)
    w = weight.float().to(DEVICE).requires_grad_()
    upstream = torch.randn(N, C, dtype=torch.float64)
    with autocast(precision):
        logits = F.linear(features.float().to(DEVICE), w,
                          bias.float().to(DEVICE))
        z = logits.detach().requires_grad_()
        out = isda_augment(z, labels.to(DEVICE), w,
                           cov.float().to(DEVICE), 0.7, IGNORE)
    assert out.dtype == torch.float32
    out.backward(upstream.float().to(DEVICE))

    # The reference on the very logits the device made.
    z64 = cpu64(z).requires_grad_()
    w64 = weight.clone().float().double().requires_grad_()
    ref = reference_augment(z64, labels, w64, cov.float().double(), 0.7,
                            IGNORE)
    ref.backward(upstream)
    torch.testing.assert_close(cpu64(out), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cpu64(w.grad), w64.grad, rtol=1e-4,
                               atol=1e-5)
    # The logits' gradient is the upstream one, in the logits' precision.
    torch.testing.assert_close(cpu64(z.grad), z64.grad.to(z.dtype).double())


@pytest.mark.parametrize('kind', ['full', 'diagonal'])
def test_augment_soft(kind):
    features, labels, weight, bias, cov = augment_inputs(kind)
    gen = torch.Generator().manual_seed(1)
    # Mixup's targets: mu = 0.7 between each sample and a permuted one.
    hard = F.one_hot(labels.clamp(min=0), C).double()
    targets = 0.7 * hard + 0.3 * hard[torch.randperm(N, generator=gen)]
    logits = F.linear(features, weight, bias)
    z = logits.float().to(DEVICE).requires_grad_()
    w = weight.float().to(DEVICE).requires_grad_()
    out, extra = isda_augment_soft(z, targets.float().to(DEVICE), w,
                                   cov.float().to(DEVICE), 0.7)
    (out.sum() + extra.sum()).backward()

    z64 = logits.float().double().requires_grad_()
    w64 = weight.float().double().requires_grad_()
    ref, ref_extra = reference_soft_augment(
        z64, targets.float().double(), w64, cov.float().double(), 0.7)
    (ref.sum() + ref_extra.sum()).backward()
    torch.testing.assert_close(cpu64(out), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cpu64(extra), ref_extra, rtol=1e-5,
                               atol=1e-5)
    torch.testing.assert_close(cpu64(w.grad), w64.grad, rtol=1e-4,
                               atol=1e-5)


def isda_loss_step(kind, precision, backward_inside=False):
    """Two steps of ISDALoss on the device; the float64 reference loss and
    classifier gradient of the second."""
    batches = make_batches([24, 32], seed=2)
    linear = torch.nn.Linear(A, C).to(DEVICE)
    loss_fn = ISDALoss(C, A, kind, ignore_index=IGNORE).to(DEVICE)
    for x, labels in batches:
        linear.zero_grad()
        with autocast(precision):
            features = x.to(DEVICE)
            loss = loss_fn(features, linear(features), labels.to(DEVICE),
                           linear.weight, 1.5)
            if backward_inside:  # a custom loop may call it here
                loss.backward()
        if not backward_inside:
            loss.backward()
    _, cov, _ = reference_statistics(batches, C, IGNORE, kind == 'full')
    w64 = cpu64(linear.weight).requires_grad_()
    x, labels = batches[-1]
    logits = F.linear(x.double(), w64, cpu64(linear.bias))
    keep = labels != IGNORE
    ref = F.cross_entropy(
        reference_augment(logits, labels, w64, cov, 1.5, IGNORE)[keep],
        labels[keep])
    ref.backward()
    return loss, linear.weight.grad, ref, w64.grad


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('kind', ['full', 'diagonal'])
def test_isda_loss(kind, precision):
    loss, grad, ref, ref_grad = isda_loss_step(kind, precision)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    rtol = AMP_RTOL.get(precision, 1e-5)
    torch.testing.assert_close(cpu64(loss), ref, rtol=rtol, atol=rtol)
    torch.testing.assert_close(cpu64(grad), ref_grad, rtol=10 * rtol,
                               atol=rtol)


@pytest.mark.parametrize('kind', ['full', 'diagonal'])
def test_backward_inside_autocast(kind):
    loss, grad, ref, _ = isda_loss_step(kind, 'fp16', backward_inside=True)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(cpu64(loss), ref, rtol=2e-2, atol=2e-2)


# ----------------------------------------------------- the toolkits' heads


def cls_case(head_type, args):
    """An mmpretrain head and a batch (features, samples). Every batch
    maker draws in float32 and then converts, so that both precisions see
    the same numbers."""
    from mmpretrain.structures import DataSample

    def make(dtype, device):
        gen = torch.Generator().manual_seed(0)
        feats = torch.randn(10, 6, generator=gen).to(dtype)
        if head_type == 'VisionTransformerClsHead':
            patches = torch.randn(10, 6, 2, 2, generator=gen).to(dtype)
            feats = [patches.to(device), feats.to(device)]
        else:
            feats = feats.to(device)
        labels = torch.randint(4, (10, ), generator=gen).tolist()
        samples = [DataSample().set_gt_label(y).to(device) for y in labels]
        return lambda head: head.loss((feats, ), samples)

    return 'mmpretrain', dict(type=head_type, num_classes=4, in_channels=6,
                              **args), make


def seg_case(head_type, args):
    """An mmseg decode head and a batch (two feature maps, label maps)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    def make(dtype, device):
        gen = torch.Generator().manual_seed(0)
        inputs = [torch.randn(2, 8, 8, 8, generator=gen).to(device, dtype)
                  for _ in range(2)]
        samples = []
        for _ in range(2):
            labels = torch.randint(4, (1, 32, 32), generator=gen)
            labels[:, :5] = 255
            sample = SegDataSample(gt_sem_seg=PixelData(data=labels))
            sample.set_metainfo(dict(img_shape=(32, 32), pad_shape=(32, 32)))
            samples.append(sample.to(device))
        return lambda head: head.loss(inputs, samples, None)

    return 'mmseg', dict(type=head_type, num_classes=4, dropout_ratio=0,
                         **args), make


def det_case(head_type, args):
    """An mmdet RoI bbox head and sampled RoIs with their targets."""

    def make(dtype, device):
        gen = torch.Generator().manual_seed(0)
        n = 12
        feats = torch.randn(n, 4, 3, 3, generator=gen).to(dtype)
        labels = torch.arange(n) % 4  # every class and background (3)
        weights = torch.ones(n, dtype=dtype)
        weights[-2:] = 0
        targets = torch.randn(n, 4, generator=gen).to(dtype)
        target_weights = (labels < 3).to(dtype)[:, None].expand(n, 4)
        rois = torch.cat([torch.zeros(n, 1),
                          torch.rand(n, 4, generator=gen)], 1).to(dtype)
        feats, rois, labels, weights, targets, target_weights = (
            t.to(device) for t in (feats, rois, labels, weights, targets,
                                   target_weights))

        def loss(head):
            double = 'DoubleConvFCBBoxHead' in type(head).__name__
            outs = head(feats, feats) if double else head(feats)
            return head.loss(*outs, rois, labels, weights, targets,
                             target_weights)

        return loss

    return 'mmdet', dict(type=head_type, num_classes=3, in_channels=4,
                         roi_feat_size=3, **args), make


HEADS = {
    'LinearClsHead': (cls_case, {}),
    'StackedLinearClsHead': (cls_case, dict(mid_channels=[5])),
    'VisionTransformerClsHead': (cls_case, dict(hidden_dim=7)),
    'FCNHead': (seg_case, dict(in_channels=8, channels=6, num_convs=1)),
    'ASPPHead': (seg_case, dict(in_channels=8, channels=6,
                                dilations=(1, 2))),
    'PSPHead': (seg_case, dict(in_channels=8, channels=6,
                               pool_scales=(1, 2))),
    'DepthwiseSeparableASPPHead': (seg_case, dict(
        in_channels=8, channels=6, dilations=(1, 2), c1_in_channels=8,
        c1_channels=4, in_index=1)),
    'SegformerHead': (seg_case, dict(in_channels=[8, 8], in_index=[0, 1],
                                     channels=6)),
    'BBoxHead': (det_case, dict(with_avg_pool=True)),
    'ConvFCBBoxHead': (det_case, dict(
        num_shared_convs=1, num_shared_fcs=1, num_cls_fcs=1,
        conv_out_channels=5, fc_out_channels=6)),
    'Shared2FCBBoxHead': (det_case, dict(fc_out_channels=6)),
    'Shared4Conv1FCBBoxHead': (det_case, dict(conv_out_channels=5,
                                              fc_out_channels=6)),
    'DoubleConvFCBBoxHead': (det_case, dict(
        num_convs=1, num_fcs=1, conv_out_channels=8, fc_out_channels=6)),
}
# Full covariance on one head per toolkit, diagonal (the default) elsewhere.
FULL = ('LinearClsHead', 'FCNHead', 'Shared2FCBBoxHead')


def build_head(head_type):
    case, args = HEADS[head_type]
    scope, cfg, make = case(head_type, args)
    registry = pytest.importorskip(f'{scope}.registry').MODELS
    import isda_mm  # noqa: F401  (registers the twins)
    covariance = 'full' if head_type in FULL else 'diagonal'
    cfg = dict(cfg, type='ISDA' + cfg['type'], lambda0=1.5,
               covariance=covariance)
    torch.manual_seed(0)
    return registry.build(cfg), make


def total_loss(losses):
    return sum(v for k, v in losses.items() if k.startswith('loss'))


def run_head(head, make, dtype, device, precision='fp32'):
    """Loss (summed), parameter gradients and statistics of one step."""
    head = copy.deepcopy(head).to(device)
    if dtype == torch.float64:
        head.double()
    loss_of = make(dtype, device)
    with autocast(precision):
        loss = total_loss(loss_of(head))
    loss.backward()
    grads = {k: p.grad for k, p in head.named_parameters()
             if p.grad is not None}
    return loss, grads, head.isda.estimator


@pytest.mark.parametrize('precision', PRECISIONS)
@pytest.mark.parametrize('head_type', HEADS)
def test_head(head_type, precision):
    head, make = build_head(head_type)
    head.train()
    ref, ref_grads, ref_est = run_head(head, make, torch.float64, 'cpu')
    loss, grads, est = run_head(head, make, torch.float32, DEVICE, precision)
    assert torch.isfinite(loss)
    assert grads.keys() == ref_grads.keys()
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert est.mean.dtype == est.covariance.dtype == torch.float32
    assert torch.equal(est.count.cpu(), ref_est.count)
    if precision != 'fp32':
        rtol = AMP_RTOL[precision]
        torch.testing.assert_close(cpu64(loss), ref, rtol=rtol, atol=rtol)
        return
    torch.testing.assert_close(cpu64(loss), ref, rtol=1e-5, atol=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(cpu64(grad), ref_grads[name], rtol=1e-4,
                                   atol=1e-5, msg=name)
    torch.testing.assert_close(cpu64(est.covariance), ref_est.covariance,
                               rtol=1e-4, atol=1e-6)

import pytest
import torch
from isda_reference import reference_augment
from torch.utils.flop_counter import FlopCounterMode

from isda_mm.core import isda_augment

N, C, A, IGNORE = 14, 6, 5, 255
KINDS = ['full', 'diagonal']


def make_inputs(kind, dtype=torch.float64, ignore=True, n=N):
    logits = torch.randn(n, C, dtype=dtype, requires_grad=True)
    # Classes 0 and 4 are absent from the batch.
    labels = torch.tensor([1, 2, 3, 5])[torch.randint(4, (n, ))]
    if ignore:
        labels[::5] = IGNORE
    weight = torch.randn(C, A, dtype=dtype, requires_grad=True)
    if kind == 'full':
        root = torch.randn(C, A, A, dtype=dtype)
        cov = root @ root.transpose(1, 2) / A
    else:
        cov = torch.rand(C, A, dtype=dtype)
    return logits, labels, weight, cov


def grads(out, *inputs):
    upstream = torch.randn(out.shape, dtype=torch.float64, generator=(
        torch.Generator().manual_seed(1)))
    return torch.autograd.grad((out * upstream.to(out.dtype)).sum(), inputs)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('ignore', [False, True])
def test_matches_reference(kind, ignore):
    logits, labels, weight, cov = make_inputs(kind, ignore=ignore)
    ignore_index = IGNORE if ignore else None
    out = isda_augment(logits, labels, weight, cov, 0.7, ignore_index)
    ref = reference_augment(logits, labels, weight, cov, 0.7, ignore_index)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads(out, logits, weight),
                         grads(ref, logits, weight)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('kind', KINDS)
def test_float32_close_to_float64_reference(kind):
    logits, labels, weight, cov = make_inputs(kind)
    f32 = [t.detach().float().requires_grad_(t.requires_grad)
           for t in (logits, weight)]
    out = isda_augment(f32[0], labels, f32[1], cov.float(), 0.7, IGNORE)
    assert out.dtype == torch.float32
    ref = reference_augment(logits, labels, weight, cov, 0.7, IGNORE)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads(out, *f32), grads(ref, logits, weight)):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('kind', KINDS)
def test_gradcheck(kind):
    logits, labels, weight, cov = make_inputs(kind, n=8)
    assert torch.autograd.gradcheck(
        lambda z, w: isda_augment(z, labels, w, cov, 0.9, IGNORE),
        (logits, weight))


@pytest.mark.parametrize('kind', KINDS)
def test_ignored_rows_unchanged(kind):
    logits, labels, weight, cov = make_inputs(kind)
    out = isda_augment(logits, labels, weight, cov, 2.0, IGNORE)
    ignored = labels == IGNORE
    assert torch.equal(out[ignored], logits[ignored])
    assert not torch.equal(out[~ignored], logits[~ignored])
    # Nothing from ignored rows reaches the weight.
    upstream = ignored[:, None].double().expand(N, C)
    (grad_w, ) = torch.autograd.grad((out * upstream).sum(), weight)
    assert torch.equal(grad_w, torch.zeros_like(grad_w))


@pytest.mark.parametrize('kind', KINDS)
def test_zero_ratio_returns_logits(kind):
    logits, labels, weight, cov = make_inputs(kind)
    assert isda_augment(logits, labels, weight, cov, 0, IGNORE) is logits


def test_full_backward_reuses_forward_product():
    k = c = 8
    a = 64
    logits = torch.randn(k, c, requires_grad=True)
    weight = torch.randn(c, a, requires_grad=True)
    root = torch.randn(c, a, a)
    cov = root @ root.transpose(1, 2)
    labels = torch.arange(k)
    with FlopCounterMode(display=False) as forward:
        out = isda_augment(logits, labels, weight, cov, 1.0)
    product = 2 * k * c * a * a
    assert forward.get_total_flops() >= product
    with FlopCounterMode(display=False) as backward:
        out.sum().backward()
    assert backward.get_total_flops() < product / 10


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('half', [torch.float16, torch.bfloat16])
def test_autocast(kind, half):
    logits, labels, weight, cov = make_inputs(kind)
    features = torch.randn(N, A)
    fc_bias = torch.randn(C)
    w32 = weight.detach().float().requires_grad_()
    with torch.autocast('cpu', dtype=half):
        z = torch.nn.functional.linear(features, w32, fc_bias)
        assert z.dtype == half
        out = isda_augment(z, labels, w32, cov.float(), 0.7, IGNORE)
    assert out.dtype == torch.float32
    # The quadratic term is computed in float32 whatever autocast does.
    ref = reference_augment(
        z.detach().double(), labels, weight.detach(), cov, 0.7, IGNORE)
    torch.testing.assert_close(out.detach().double(), ref, rtol=1e-5,
                               atol=1e-5)
    out.sum().backward()
    assert torch.isfinite(w32.grad).all() and w32.grad.abs().sum() > 0


@pytest.mark.parametrize('change, error, match', [
    (dict(weight=torch.randn(C + 1, A)), ValueError,
     r'weight must be \(C, A\) with C=6'),
    (dict(cov=torch.randn(C, A + 1)), ValueError,
     r'covariance must be \(6, 5, 5\) or \(6, 5\)'),
    (dict(labels=torch.tensor([0] * (N - 1) + [C])), ValueError,
     r'label 6 is outside \[0, 6\)'),
    (dict(labels=torch.zeros(N)), TypeError, r'labels must be an integer'),
    (dict(labels=torch.zeros(N - 1, dtype=torch.long)), ValueError,
     r'expected logits \(N, C\) and labels \(N,\)'),
    (dict(ratio=-0.5), ValueError,
     r'ratio must be a finite non-negative number'),
    (dict(ratio=float('nan')), ValueError, r'ratio must be a finite'),
    (dict(weight=torch.randn(C, A, device='meta')), ValueError,
     r'must be on one device'),
])
def test_bad_input(change, error, match):
    logits, labels, weight, cov = make_inputs('diagonal')
    args = dict(logits=logits, labels=labels, weight=weight, cov=cov,
                ratio=0.5) | change
    with pytest.raises(error, match=match):
        isda_augment(args['logits'], args['labels'], args['weight'],
                     args['cov'], args['ratio'], IGNORE)


@pytest.mark.parametrize('kind', KINDS)
def test_per_pixel_layout_equals_per_sample(kind):
    # (B, C, H, W) logits with (B, H, W) labels, as cross_entropy takes
    # them, give what the same samples give as rows.
    logits, labels, weight, cov = make_inputs(kind, n=2 * 3 * 4)
    pixels = logits.detach().view(2, 3, 4, C).permute(0, 3, 1, 2)
    out = isda_augment(pixels, labels.view(2, 3, 4), weight, cov, 0.7,
                       IGNORE)
    # In the logits' own layout (channels last here): no copy back.
    assert out.shape == pixels.shape and out.stride() == pixels.stride()
    rows = isda_augment(logits, labels, weight, cov, 0.7, IGNORE)
    torch.testing.assert_close(out.permute(0, 2, 3, 1).reshape(-1, C), rows,
                               rtol=1e-12, atol=1e-12)

"""Mean Teacher + ISDA: the consistency bound against a float64 loop
reference and Monte-Carlo (both translation covariances), its ramp, the
13-layer ConvNet and Mean Teacher's optimizer schedule."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import nn

import isda_mm  # noqa: F401
from isda_mm.classification.semi import (
    MeanTeacherRampLR,
    isda_consistency,
    sigmoid_rampup,
)

N, C, A = 6, 4, 3
KINDS = ['full', 'diagonal']
TRANSLATIONS = ['argmax', 'mixture']


def reference_bound(logits, probs, weight, cov, ratio, translation):
    """``log sum_k exp(z_k - p^T z + ratio/2 q_k) - H(p)`` sample by sample,
    ``q_k = (w_k - w̄)^T S_p (w_k - w̄)``, written from DESIGN.md Sec. 7/8."""
    out = []
    for i in range(logits.shape[0]):
        p = probs[i]
        if translation == 'argmax':
            j = int(p.argmax())
            sigma = cov[j] if cov.dim() == 3 else torch.diag(cov[j])
        else:
            sigma = sum(p[j] * (cov[j] if cov.dim() == 3 else torch.diag(
                cov[j])) for j in range(len(p)))
        wbar = sum(p[j] * weight[j] for j in range(len(p)))
        pz = sum(p[j] * logits[i, j] for j in range(len(p)))
        terms = []
        for k in range(logits.shape[1]):
            d = weight[k] - wbar
            terms.append(torch.exp(logits[i, k] - pz +
                                   0.5 * ratio * (d @ sigma @ d)))
        entropy = -sum(p[j] * torch.log(p[j]) for j in range(len(p)))
        out.append(torch.log(sum(terms)) - entropy)
    return torch.stack(out)


def problem(kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, C, dtype=torch.float64, generator=g)
    weight = torch.randn(C, A, dtype=torch.float64, generator=g)
    probs = torch.softmax(2 * torch.randn(N, C, dtype=torch.float64,
                                          generator=g), 1)
    if kind == 'full':
        root = torch.randn(C, A, A, dtype=torch.float64, generator=g)
        cov = root @ root.transpose(1, 2) / A
    else:
        cov = torch.rand(C, A, dtype=torch.float64, generator=g)
    return logits.requires_grad_(), weight.requires_grad_(), probs, cov


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('translation', TRANSLATIONS)
def test_bound_matches_loop_reference(kind, translation):
    logits, weight, probs, cov = problem(kind)
    got = isda_consistency(logits, probs, weight, cov, 0.7, translation)
    want = reference_bound(logits, probs, weight, cov, 0.7, translation)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    g = torch.autograd.grad(got.sum(), (logits, weight))
    h = torch.autograd.grad(want.sum(), (logits, weight))
    for a, b in zip(g, h):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('translation', TRANSLATIONS)
def test_lambda_zero_is_the_kl_divergence(translation):
    logits, weight, probs, cov = problem('full')
    got = isda_consistency(logits, probs, weight, cov, 0.0, translation)
    kl = F.kl_div(F.log_softmax(logits, 1), probs, reduction='none').sum(1)
    torch.testing.assert_close(got, kl, rtol=0, atol=1e-12)
    # and without any statistics (a stock head)
    torch.testing.assert_close(isda_consistency(logits, probs), kl, rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('translation', TRANSLATIONS)
def test_bound_exceeds_sampled_expected_kl(kind, translation):
    """E over delta ~ N(0, lambda S_p) of KL(p || softmax(z + W delta))."""
    logits, weight, probs, cov = problem(kind, seed=1)
    ratio, draws = 2.0, 20000
    bound = isda_consistency(logits, probs, weight, cov, ratio, translation)
    g = torch.Generator().manual_seed(3)
    for i in range(N):
        p = probs[i]
        full = cov if kind == 'full' else torch.diag_embed(cov)
        sigma = (full[int(p.argmax())] if translation == 'argmax' else
                 (p[:, None, None] * full).sum(0))
        root = torch.linalg.cholesky(ratio * sigma +
                                     1e-12 * torch.eye(A, dtype=sigma.dtype))
        delta = torch.randn(draws, A, dtype=torch.float64, generator=g) @ \
            root.T
        z = logits[i].detach() + delta @ weight.detach().T
        kl = (p * (p.log() - F.log_softmax(z, 1))).sum(1)
        margin = 4 * kl.std() / math.sqrt(draws)
        assert bound[i] >= kl.mean() - margin, (i, bound[i], kl.mean())
        assert kl.mean() > 0


def test_sigmoid_rampup():
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(5, 10) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(10, 10) == sigmoid_rampup(None, 10) == 1.0
    assert sigmoid_rampup(0, 0) == 1.0


def test_convnet13_shape_and_parameters():
    backbone = MODELS.build(dict(type='ConvNet13'))
    out, = backbone(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 128, 6, 6)
    # 3.1M in the papers (their classifier adds 1,290)
    assert sum(p.numel() for p in backbone.parameters()) == 3_120_512


def test_mean_teacher_ramp_lr():
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=0.003)
    sched = MeanTeacherRampLR(opt, total_iters=100, rampup_iters=40,
                              rampdown_iters=25, betas1=(0.9, 0.5),
                              betas2=(0.99, 0.999))
    values = {}
    for t in range(100):
        values[t] = (opt.param_groups[0]['lr'], opt.param_groups[0]['betas'])
        opt.step()
        sched.step()
    assert values[0][0] == pytest.approx(0.003 * math.exp(-5))
    assert values[50][0] == pytest.approx(0.003)
    down = math.exp(-12.5 * (1 - 10 / 25)**2)
    assert values[90][0] == pytest.approx(0.003 * down)
    assert values[90][1][0] == pytest.approx(0.9 * down + 0.5 * (1 - down))
    assert values[39][1][1] == 0.99 and values[40][1][1] == 0.999

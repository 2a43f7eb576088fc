import pytest
import torch
import torch.nn.functional as F
from isda_reference import reference_augment, reference_statistics

from isda_mm.core import ISDALoss

C, A, IGNORE = 4, 3, 255
pytestmark = pytest.mark.usefixtures('segment_sums')


@pytest.mark.parametrize('kind', ['full', 'diagonal'])
def test_forward_updates_then_scores_augmented_logits(kind):
    loss_fn = ISDALoss(C, A, kind, ignore_index=IGNORE).double()
    fc = torch.nn.Linear(A, C).double()
    seen = []
    for n in (10, 6):
        features = torch.randn(n, A, dtype=torch.float64)
        labels = torch.randint(C, (n, ))
        labels[0] = IGNORE
        seen.append((features, labels))
        logits = fc(features)
        loss = loss_fn(features, logits, labels, fc.weight, 0.8)
        # The statistics used already include this batch (DESIGN.md §1).
        _, cov, count = reference_statistics(seen, C, IGNORE,
                                             kind == 'full')
        assert torch.equal(loss_fn.estimator.count, count)
        ref = F.cross_entropy(
            reference_augment(logits, labels, fc.weight, cov, 0.8, IGNORE),
            labels, ignore_index=IGNORE)
        torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
        loss.backward()
        assert torch.isfinite(fc.weight.grad).all()


def test_zero_ratio_is_plain_cross_entropy():
    loss_fn = ISDALoss(C, A, 'full')
    features = torch.randn(8, A)
    labels = torch.randint(C, (8, ))
    logits = torch.randn(8, C)
    weight = torch.randn(C, A)
    class_weight = torch.rand(C)
    loss = loss_fn(features, logits, labels, weight, 0.0,
                   class_weight=class_weight, reduction='sum')
    assert torch.equal(
        loss,
        F.cross_entropy(logits, labels, weight=class_weight,
                        reduction='sum'))
    assert loss_fn.estimator.count.sum() == 8


def test_packed_covariance_gives_the_same_loss():
    fc = torch.nn.Linear(A, C)
    features = torch.randn(12, A)
    labels = torch.randint(C, (12, ))
    results = []
    for packed in (False, True):
        loss_fn = ISDALoss(C, A, 'full', packed=packed)
        fc.zero_grad()
        loss = loss_fn(features, fc(features), labels, fc.weight, 0.8)
        loss.backward()
        results.append((loss.detach(), fc.weight.grad.clone()))
    torch.testing.assert_close(results[0], results[1], rtol=1e-6,
                               atol=1e-6)

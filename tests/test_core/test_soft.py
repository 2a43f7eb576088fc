"""The soft-target bound (DESIGN.md §7) against a float64 loop reference,
its gradients, its tie to today's ISDA, and Monte-Carlo."""
import pytest
import torch
import torch.nn.functional as F
from host_syncs import count_host_syncs
from isda_reference import (
    reference_soft_augment,
    reference_statistics,
    reference_weighted_statistics,
)

from isda_mm.core import (
    CovarianceEstimator,
    ISDALoss,
    isda_augment,
    isda_augment_soft,
)

N, C, A = 10, 5, 4
KINDS = ['full', 'diagonal']


def covariances(kind, generator=None):
    if kind == 'full':
        root = torch.randn(C, A, A, dtype=torch.float64, generator=generator)
        return root @ root.transpose(1, 2) / A
    return torch.rand(C, A, dtype=torch.float64, generator=generator)


def mixup_targets(n=N, mu=0.7):
    """Mixup's targets: every pair (y, y[perm]) with one mu per batch."""
    labels = torch.tensor([0, 2, 3, 2, 0, 3, 1, 2, 0, 3])[:n]
    perm = torch.tensor([3, 0, 5, 1, 2, 4, 9, 8, 6, 7])[:n]
    onehot = F.one_hot(labels, C).double()
    return mu * onehot + (1 - mu) * onehot[perm], labels


def inputs(kind):
    torch.manual_seed(0)
    logits = torch.randn(N, C, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(C, A, dtype=torch.float64, requires_grad=True)
    return logits, weight, covariances(kind)


def smoothed(labels, eps=0.1):
    return (1 - eps) * F.one_hot(labels, C).double() + eps / C


def all_grads(outputs, inputs):
    g = torch.Generator().manual_seed(2)
    total = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum()
                for o in outputs)
    return torch.autograd.grad(total, inputs)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('case', ['mixup', 'smooth', 'weighted', 'dense'])
def test_matches_reference(kind, case):
    logits, weight, cov = inputs(kind)
    targets, labels = mixup_targets()
    mixture = None
    if case == 'smooth':  # label smoothing translates with S_y
        targets, mixture = smoothed(labels), labels
    elif case == 'weighted':  # class weights scale t; mixture given apart
        targets = targets * torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0],
                                         dtype=torch.float64)
        mixture = mixup_targets()[0]
    elif case == 'dense':  # a teacher's probabilities
        targets = torch.softmax(torch.randn(N, C, dtype=torch.float64), 1)
    out, extra = isda_augment_soft(logits, targets, weight, cov, 0.8,
                                   mixture)
    ref, ref_extra = reference_soft_augment(logits, targets, weight, cov,
                                            0.8, mixture)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(extra, ref_extra, rtol=1e-10, atol=1e-10)
    for got, want in zip(all_grads((out, extra), (logits, weight)),
                         all_grads((ref, ref_extra), (logits, weight))):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('kind', KINDS)
def test_gradcheck(kind):
    logits, weight, cov = inputs(kind)
    targets, labels = mixup_targets()
    for mixture in (None, labels):
        assert torch.autograd.gradcheck(
            lambda z, w: isda_augment_soft(z, targets, w, cov, 0.9, mixture),
            (logits, weight))


@pytest.mark.parametrize('kind', KINDS)
def test_one_hot_targets_are_todays_isda(kind):
    logits, weight, cov = inputs(kind)
    labels = mixup_targets()[1]
    onehot = F.one_hot(labels, C).double()
    for mixture in (None, labels, onehot):
        out, extra = isda_augment_soft(logits, onehot, weight, cov, 0.8,
                                       mixture)
        hard = isda_augment(logits, labels, weight, cov, 0.8)
        torch.testing.assert_close(out, hard, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(extra, torch.zeros(N, dtype=extra.dtype),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('mixture', ['targets', 'labels', 'weights'])
def test_a_soft_step_syncs_with_the_host_twice(kind, mixture):
    """One sync to index the statistics' update, one to check the targets
    (and find the classes a full table needs): none per pattern, sample or
    class."""
    loss = ISDALoss(C, A, kind)
    features = torch.randn(N, A)
    weight = torch.randn(C, A, requires_grad=True)
    targets, labels = mixup_targets()
    mixture = dict(targets=None, labels=labels,
                   weights=targets.float())[mixture]
    with count_host_syncs() as syncs:
        out, extra = loss.augment_soft(features, features @ weight.T,
                                       targets.float(), weight, 0.5, mixture)
        (out.logsumexp(1) + extra).sum().backward()
    assert syncs.counts == {'tolist': 2}


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('case', ['mixup', 'smooth'])
def test_bound_above_monte_carlo(kind, case):
    """E over translated features of CE(z~, p) <= soft CE(out, p) + extra;
    for a one-hot target it is today's ISDA bound."""
    g = torch.Generator().manual_seed(3)
    features = torch.randn(N, A, dtype=torch.float64, generator=g)
    weight = torch.randn(C, A, dtype=torch.float64, generator=g)
    bias = torch.randn(C, dtype=torch.float64, generator=g)
    cov = covariances(kind, g)
    targets, labels = mixup_targets()
    mixture = None
    if case == 'smooth':
        targets, mixture = smoothed(labels), labels
    ratio = 0.6
    logits = features @ weight.T + bias
    out, extra = isda_augment_soft(logits, targets, weight, cov, ratio,
                                   mixture)
    bound = -(targets * out.log_softmax(1)).sum(1) + extra
    m = F.one_hot(labels, C).double() if mixture is not None else targets
    full = cov if kind == 'full' else torch.diag_embed(cov)
    sigma = torch.einsum('nc,cab->nab', m, full) * ratio
    draws = torch.distributions.MultivariateNormal(
        torch.zeros(N, A, dtype=torch.float64),
        sigma + 1e-12 * torch.eye(A, dtype=torch.float64)).sample((20000, ))
    z = (features + draws) @ weight.T + bias
    sampled = -(targets * z.log_softmax(-1)).sum(-1).mean(0)
    assert (bound >= sampled - 0.02).all()
    assert (bound - sampled).max() > 1e-3  # a bound, not an equality
    hard = F.cross_entropy(isda_augment(logits, labels, weight, cov, ratio),
                           labels, reduction='none')
    onehot_out, onehot_extra = isda_augment_soft(
        logits, F.one_hot(labels, C).double(), weight, cov, ratio)
    torch.testing.assert_close(
        F.cross_entropy(onehot_out, labels, reduction='none') + onehot_extra,
        hard)


@pytest.mark.parametrize('change, error, match', [
    (dict(targets=-torch.eye(N, C)), ValueError, r'finite and non-negative'),
    (dict(targets=torch.ones(N, C + 1)), ValueError,
     r'expected logits and targets \(N, C\)'),
    (dict(mixture=torch.full((N, ), C)), ValueError,
     r'mixture labels in \[0, 5\)'),
    (dict(mixture=torch.ones(N, C + 1)), ValueError,
     r'mixture weights must be \(10, 5\)'),
    (dict(mixture=torch.full((N, C), float('nan'))), ValueError,
     r'finite and non-negative'),
    (dict(mixture=torch.ones(N, dtype=torch.bool)), TypeError,
     r'mixture must be integer labels'),
])
def test_bad_input(change, error, match):
    logits, weight, cov = inputs('diagonal')
    args = dict(targets=mixup_targets()[0], mixture=None) | change
    with pytest.raises(error, match=match):
        isda_augment_soft(logits, args['targets'].double(), weight, cov, 0.5,
                          args['mixture'])


@pytest.mark.parametrize('kind', KINDS)
def test_weighted_statistics_match_reference(kind, segment_sums):
    g = torch.Generator().manual_seed(4)
    batches = []
    for n in (7, 1, 12):
        onehot = F.one_hot(torch.randint(C, (n, ), generator=g), C).float()
        mu = torch.rand(1, generator=g)
        mixed = mu * onehot + (1 - mu) * onehot[torch.randperm(n, generator=g)]
        batches.append((torch.randn(n, A, generator=g) * 3 + 1, mixed))
    est = CovarianceEstimator(C, A, kind)
    for features, weights in batches:
        est.update(features, weights)
    mean, cov, total = reference_weighted_statistics(batches, C,
                                                     kind == 'full')
    torch.testing.assert_close(est.weight_sum, total)
    torch.testing.assert_close(est.mean.double(), mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(est.covariance.double(), cov, rtol=1e-5,
                               atol=1e-5)
    counts = sum(((w > 0).sum(0) for _, w in batches))
    assert torch.equal(est.count, counts)


@pytest.mark.parametrize('kind', KINDS)
def test_one_hot_weights_update_as_labels(kind, segment_sums):
    g = torch.Generator().manual_seed(5)
    soft, hard = CovarianceEstimator(C, A, kind), CovarianceEstimator(
        C, A, kind)
    batches = []
    for n in (6, 9):
        labels = torch.randint(C, (n, ), generator=g)
        features = torch.randn(n, A, generator=g)
        soft.update(features, F.one_hot(labels, C).float())
        hard.update(features, labels)
        batches.append((features, labels))
    for name, value in hard.state_dict().items():
        torch.testing.assert_close(soft.state_dict()[name], value)
    mean, _, count = reference_statistics(batches, C, full=kind == 'full')
    assert torch.equal(soft.count, count)


def test_loss_augment_soft_updates_and_bounds():
    torch.manual_seed(6)
    loss = ISDALoss(C, A, 'full')
    features = torch.randn(N, A)
    weight = torch.randn(C, A, requires_grad=True)
    targets, labels = mixup_targets()
    out, extra = loss.augment_soft(features, features @ weight.T,
                                   targets.float(), weight, 0.5)
    assert torch.equal(loss.estimator.weight_sum, targets.sum(0))
    ref, ref_extra = reference_soft_augment(
        (features @ weight.T).double(), targets, weight.double(),
        loss.estimator.covariance.double(), 0.5)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(extra.double(), ref_extra, rtol=1e-5,
                               atol=1e-5)
    # Label smoothing: the statistics take the hard labels.
    loss.augment_soft(features, features @ weight.T, smoothed(labels).float(),
                      weight, 0.5, labels)
    assert torch.equal(loss.estimator.count,
                       (targets > 0).sum(0) + torch.bincount(labels,
                                                             minlength=C))

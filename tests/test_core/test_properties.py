"""Property-based tests of the public core API: hypothesis searches shapes,
dtypes, labels, targets and settings; every answer is either a clear
``ValueError``/``TypeError`` naming the argument to change, or the float64
loop reference of ``isda_reference.py`` to a dtype-dependent tolerance,
gradients included.

Profiles (``tests/conftest.py``): ``ci`` (the default, fixed examples) and
``dev`` (``HYPOTHESIS_PROFILE=dev``: many more, random, kept in the local
database). A bug the search finds is fixed and then pinned here with
``@example``, so that it stays found on every machine.
"""
from typing import NamedTuple, Optional

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, example, given
from hypothesis import strategies as st
from isda_reference import (
    reference_augment,
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

KINDS = ('full', 'diagonal', 'packed')
FLOATS = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
# Relative tolerance of a result in each dtype. Inputs of any dtype are
# exact in float64, so a result computed in float32 (or float64) errs only
# by its arithmetic; gradients come back rounded to their input's dtype.
RTOL = {torch.float64: 1e-9, torch.float32: 2e-4, torch.bfloat16: 1e-2,
        torch.float16: 2e-3}


class Problem(NamedTuple):
    """One draw: sizes, dtypes, settings and a seed for the values."""
    n: int
    c: int
    a: int
    spatial: tuple
    kind: str
    feature_dtype: torch.dtype
    stats_dtype: torch.dtype
    label_dtype: torch.dtype
    ignore_index: Optional[int]
    ignored: float
    ratio: float
    scale: float
    seed: int

    @property
    def full(self) -> bool:
        return self.kind != 'diagonal'

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 7919 + salt)

    def labels(self, salt: int = 0) -> torch.Tensor:
        """``(n, *spatial)`` labels: a few classes of C (some absent, some
        seen once), a fraction ignored."""
        g = self.generator(salt)
        shape = (self.n, ) + self.spatial
        present = torch.randperm(self.c, generator=g)[:max(
            1, self.c - int(torch.randint(0, 3, (1, ), generator=g)))]
        labels = present[torch.randint(len(present), shape, generator=g)]
        if self.ignore_index is not None:
            drop = torch.rand(shape, generator=g) < self.ignored
            labels[drop] = self.ignore_index
        return labels.to(self.label_dtype)

    def features(self, salt: int = 0, width: Optional[int] = None):
        """``(n, A, *spatial)`` features, off-centre, in the feature dtype
        (exact in float64)."""
        g = self.generator(salt + 1)
        shape = (self.n, width or self.a) + self.spatial
        x = torch.randn(shape, generator=g, dtype=torch.float64)
        return (x * self.scale + self.scale).to(self.feature_dtype)

    def covariance(self):
        """Random covariances as the stats store them: (C, A, A) or (C, A)."""
        g = self.generator(3)
        if self.full:
            root = torch.randn(self.c, self.a, self.a, generator=g,
                               dtype=torch.float64)
            cov = root @ root.transpose(1, 2) / self.a
        else:
            cov = torch.rand(self.c, self.a, generator=g, dtype=torch.float64)
        return cov.to(self.stats_dtype)

    def as_argument(self, cov: torch.Tensor):
        """The covariance as a caller hands it: the tensor, or for packed
        storage the estimator holding it."""
        if self.kind != 'packed':
            return cov
        est = CovarianceEstimator(self.c, self.a, 'full', packed=True,
                                  dtype=self.stats_dtype)
        rows, cols = est.triangle_indices()
        est.covariance.copy_(cov[:, rows, cols])
        return est

    def tolerance(self, *inputs: torch.dtype) -> float:
        """Of a result computed in the statistics' dtype (float32 or
        wider), returned in the dtypes of ``inputs``."""
        return max([RTOL[self.stats_dtype]] + [RTOL[d] for d in inputs])


def uint8_ok(c, ignore):
    return c <= 255 and (ignore is None or 0 <= ignore <= 255)


@st.composite
def problems(draw, spatial=True, max_n=10):
    c = draw(st.integers(1, 6))
    ignore_index = draw(st.sampled_from([None, 255, -1, -100, 0]))
    label_dtypes = [torch.int64, torch.int32]
    if uint8_ok(c, ignore_index):
        label_dtypes.append(torch.uint8)
    return Problem(
        n=draw(st.integers(0, max_n)),
        c=c,
        a=draw(st.integers(1, 5)),
        spatial=tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
        if spatial else (),
        kind=draw(st.sampled_from(KINDS)),
        feature_dtype=draw(st.sampled_from(FLOATS)),
        stats_dtype=draw(st.sampled_from((torch.float32, torch.float64))),
        label_dtype=draw(st.sampled_from(label_dtypes)),
        ignore_index=ignore_index,
        ignored=draw(st.sampled_from([0.0, 0.3, 1.0])),
        ratio=draw(st.sampled_from([0.0, 0.5, 7.5, 1e3])),
        scale=draw(st.sampled_from([1.0, 30.0])),
        seed=draw(st.integers(0, 2**16)),
    )


def per_sample(t: torch.Tensor) -> torch.Tensor:
    """``(N, ch, *spatial)`` as ``(N * P, ch)`` rows, as the references
    take them."""
    return t.movedim(1, -1).reshape(-1, t.shape[1]) if t.dim() > 2 else t


def unpacked(est: CovarianceEstimator) -> torch.Tensor:
    if not est.packed:
        return est.covariance
    return torch.stack([est.class_covariance(c)
                        for c in range(est.num_classes)])


def assert_close(got, want, rtol, scale=1.0):
    """Equal to a relative tolerance of the larger of the values' and the
    problem's magnitude."""
    got, want = got.double(), want.double()
    size = max(scale, want.abs().max().item() if want.numel() else 0.0)
    torch.testing.assert_close(got, want, rtol=0, atol=rtol * (1 + size))


def upstream(out: torch.Tensor, salt: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(salt)
    return torch.randn(out.shape, generator=g, dtype=torch.float64)


def grads(outputs, inputs):
    """Gradients of a random projection of the outputs, zeros for inputs
    they do not depend on."""
    total = sum((o.double() * upstream(o, i)).sum()
                for i, o in enumerate(outputs))
    got = torch.autograd.grad(total, inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g
            for g, x in zip(got, inputs)]


def make_estimator(p: Problem) -> CovarianceEstimator:
    return CovarianceEstimator(p.c, p.a, 'full' if p.full else 'diagonal',
                               ignore_index=p.ignore_index,
                               dtype=p.stats_dtype,
                               packed=p.kind == 'packed')


# -- the statistics ----------------------------------------------------------


@given(problems(), st.integers(1, 3))
@example(  # int32 labels reached index_add_ into int64 counts
    Problem(5, 3, 4, (), 'full', torch.float32, torch.float32, torch.int32,
            None, 0.0, 0.5, 1.0, 0), 1)
def test_statistics_match_the_reference(p, batches):
    est = make_estimator(p)
    seen = []
    for b in range(batches):
        features, labels = p.features(b), p.labels(b)
        assert est.update(features, labels)
        seen.append((per_sample(features), labels.flatten().long()))
    mean, cov, count = reference_statistics(seen, p.c, p.ignore_index,
                                            p.full)
    assert torch.equal(est.count, count)
    tol = p.tolerance()
    assert_close(est.mean, mean, tol, p.scale)
    assert_close(unpacked(est), cov, tol, p.scale**2)


@given(problems(spatial=False), st.sampled_from(FLOATS),
       st.sampled_from(['onehot', 'mixed', 'dense', 'zero rows']))
@example(  # the diagonal path left float64 weights beside float32 sums
    Problem(5, 3, 4, (), 'diagonal', torch.float32, torch.float32,
            torch.int64, None, 0.0, 0.5, 1.0, 0), torch.float64, 'dense')
def test_weighted_statistics_match_the_reference(p, weight_dtype, case):
    est = make_estimator(p)
    seen = []
    for b in range(2):
        features = p.features(b)
        weights = soft_targets(p, case, salt=b).to(weight_dtype)
        assert est.update(features, weights)
        if p.ignore_index in range(p.c):  # skipped, as that label is
            weights = weights.clone()
            weights[:, p.ignore_index] = 0
        seen.append((features, weights))
    if not seen[0][0].numel() and not seen[1][0].numel():
        return
    mean, cov, total = reference_weighted_statistics(seen, p.c, p.full)
    assert torch.equal(est.count, sum((w > 0).sum(0) for _, w in seen))
    tol = p.tolerance()
    assert_close(est.weight_sum, total, tol)
    assert_close(est.mean, mean, tol, p.scale)
    assert_close(unpacked(est), cov, tol, p.scale**2)


@given(problems(spatial=False), st.sampled_from(FLOATS))
def test_one_hot_class_weights_update_as_labels(p, weight_dtype):
    hard, soft = make_estimator(p), make_estimator(p)
    for b in range(2):
        features, labels = p.features(b), p.labels(b)
        hard.update(features, labels)
        counted = labels.long() != (p.ignore_index if p.ignore_index
                                    is not None else -12345)
        # an ignored sample has no class: a row of zeros
        onehot = F.one_hot(labels.long().clamp(0, p.c - 1), p.c) * \
            counted[:, None]
        soft.update(features, onehot.to(weight_dtype))
    assert torch.equal(soft.count, hard.count)
    tol = p.tolerance()
    assert_close(soft.weight_sum, hard.weight_sum, 0)
    assert_close(soft.mean, hard.mean, tol, p.scale)
    assert_close(soft.covariance, hard.covariance, tol, p.scale**2)


@given(problems(), st.permutations(range(3)))
def test_pooled_merge_is_order_invariant(p, order):
    """The pooled statistics of every feature seen do not depend on the
    order of the batches, nor on how they were split."""
    batches = [(p.features(b), p.labels(b)) for b in range(3)]
    one, other, whole = make_estimator(p), make_estimator(p), \
        make_estimator(p)
    for b in range(3):
        one.update(*batches[b])
        other.update(*batches[order[b]])
    whole.update(torch.cat([f for f, _ in batches]),
                 torch.cat([y for _, y in batches]))
    tol = p.tolerance()
    for est in (other, whole):
        assert torch.equal(est.count, one.count)
        assert_close(est.mean, one.mean, tol, p.scale)
        assert_close(est.covariance, one.covariance, tol, p.scale**2)


@given(problems(), st.sampled_from(['nan', 'inf']))
def test_a_rejected_batch_changes_nothing(p, bad):
    est = make_estimator(p)
    est.update(p.features(0), p.labels(0))
    before = {k: v.clone() for k, v in est.state_dict().items()}
    features, labels = p.features(1), p.labels(1)
    counted = labels.long() != (p.ignore_index
                                if p.ignore_index is not None else -12345)
    assume(counted.any())
    per_pixel = features.movedim(1, -1)  # a view: (n, *spatial, A)
    per_pixel[counted] = float(bad)
    with pytest.warns(UserWarning, match='statistics are unchanged'):
        assert not est.update(features, labels)
    for name, value in est.state_dict().items():
        assert torch.equal(value, before[name]), name


# -- the augmented logits ----------------------------------------------------


@given(problems(), st.sampled_from(FLOATS))
@example(  # no class present: the full table had no row to build from
    Problem(3, 2, 2, (), 'full', torch.float32, torch.float32, torch.int64,
            255, 1.0, 0.5, 1.0, 0), torch.float32)
def test_augment_matches_the_reference(p, weight_dtype):
    labels = p.labels()
    logits = p.features(width=p.c).requires_grad_()
    weight = torch.randn(p.c, p.a, generator=p.generator(4),
                         dtype=torch.float64).to(weight_dtype)
    weight.requires_grad_()
    cov = p.covariance()
    out = isda_augment(logits, labels, weight, p.as_argument(cov), p.ratio,
                       p.ignore_index)
    assert out.shape == logits.shape
    if p.ratio == 0:
        assert out is logits
        return
    assert out.dtype == torch.promote_types(p.stats_dtype, torch.float32)
    ref_logits = per_sample(logits.detach().double()).requires_grad_()
    ref_weight = weight.detach().double().requires_grad_()
    ref = reference_augment(ref_logits, labels.flatten().long(), ref_weight,
                            cov.double(), p.ratio, p.ignore_index) \
        if ref_logits.shape[0] else ref_logits * 1
    assert_close(per_sample(out), ref, p.tolerance(), p.scale)
    got = grads([per_sample(out)], [logits, weight])
    want = grads([ref], [ref_logits, ref_weight])
    assert_close(per_sample(got[0]), want[0], p.tolerance(p.feature_dtype))
    assert_close(got[1], want[1], p.tolerance(weight_dtype))


def soft_targets(p: Problem, case: str, salt: int = 0) -> torch.Tensor:
    """``(n, C)`` non-negative targets of one kind."""
    g = p.generator(10 + salt)
    labels = torch.randint(p.c, (p.n, ), generator=g)
    onehot = F.one_hot(labels, p.c).double()
    if case == 'onehot':
        return onehot
    if case == 'smoothed':
        return 0.9 * onehot + 0.1 / p.c
    if case == 'mixed':  # Mixup: one mu per batch, pairs (y, y[perm])
        perm = torch.randperm(p.n, generator=g)
        return 0.7 * onehot + 0.3 * onehot[perm]
    dense = torch.rand(p.n, p.c, generator=g, dtype=torch.float64)
    if case == 'zero rows':
        dense[::2] = 0
    return dense


@given(problems(spatial=False),
       st.sampled_from(['onehot', 'smoothed', 'mixed', 'dense', 'zero rows']),
       st.sampled_from(['none', 'labels', 'weights']),
       st.sampled_from([1.0, 2.5]))
@example(  # a zero target row was augmented through its label's covariance
    Problem(4, 3, 2, (), 'full', torch.float64, torch.float64, torch.int64,
            None, 0.0, 0.5, 1.0, 1), 'zero rows', 'labels', 1.0)
@example(  # no class used at all: the full table indexed with a float list
    Problem(4, 3, 2, (), 'full', torch.float64, torch.float64, torch.int64,
            None, 0.0, 0.5, 1.0, 1), 'zero rows', 'none', 1.0)
def test_soft_augment_matches_the_reference(p, case, mixture_kind, scale):
    targets = soft_targets(p, case) * scale  # class-weighted when scaled
    if case == 'zero rows' and mixture_kind == 'none':
        targets = targets * 0  # nothing scored at all
    g = p.generator(20)
    mixture = dict(
        none=None,
        labels=torch.randint(p.c, (p.n, ), generator=g).to(p.label_dtype),
        weights=torch.rand(p.n, p.c, generator=g, dtype=torch.float64) *
        (torch.rand(p.n, p.c, generator=g) < 0.6))[mixture_kind]
    logits = p.features(width=p.c).detach().requires_grad_()
    weight = torch.randn(p.c, p.a, generator=p.generator(4),
                         dtype=torch.float64).to(p.feature_dtype)
    weight.requires_grad_()
    cov = p.covariance()
    out, extra = isda_augment_soft(logits, targets.to(p.feature_dtype),
                                   weight, p.as_argument(cov), p.ratio,
                                   mixture)
    ref_logits = logits.detach().double().requires_grad_()
    ref_weight = weight.detach().double().requires_grad_()
    ref_targets = targets.to(p.feature_dtype).double()
    if p.n:
        ref, ref_extra = reference_soft_augment(
            ref_logits, ref_targets, ref_weight, cov.double(), p.ratio,
            None if mixture is None else mixture.long()
            if mixture_kind == 'labels' else mixture)
    else:
        ref, ref_extra = ref_logits * 1, ref_logits.sum(1) * 0
    # The bound's terms cancel in the extra term: errors scale with them.
    size = max(p.scale, (ref - ref_logits).abs().max().item() if p.n else 0)
    assert_close(out, ref, p.tolerance(), size)
    assert_close(extra, ref_extra, p.tolerance(), size)
    zero = ref_targets.sum(1) == 0
    assert torch.equal(out[zero], logits.detach()[zero].to(out.dtype))
    for got, want in zip(grads([out, extra], [logits, weight]),
                         grads([ref, ref_extra], [ref_logits, ref_weight])):
        assert_close(got, want, p.tolerance(p.feature_dtype))


@given(problems(spatial=False))
def test_one_hot_soft_targets_are_hard_labels(p):
    labels = torch.randint(p.c, (p.n, ), generator=p.generator(30))
    onehot = F.one_hot(labels, p.c).to(p.feature_dtype)
    logits = p.features(width=p.c)
    weight = torch.randn(p.c, p.a, generator=p.generator(4),
                         dtype=torch.float64).to(p.feature_dtype)
    cov = p.as_argument(p.covariance())
    hard = isda_augment(logits, labels.to(p.label_dtype), weight, cov,
                        p.ratio)
    for mixture in (None, labels, onehot):
        out, extra = isda_augment_soft(logits, onehot, weight, cov, p.ratio,
                                       mixture)
        size = max(p.scale, (hard - logits).abs().max().item() if p.n
                   else 0)
        assert_close(out, hard, p.tolerance(), size)
        assert_close(extra, torch.zeros(p.n), p.tolerance(), size)


@given(problems())
def test_lambda_zero_is_the_plain_loss(p):
    loss = ISDALoss(p.c, p.a, 'full' if p.full else 'diagonal',
                    p.ignore_index, packed=p.kind == 'packed')
    features, labels = p.features().float(), p.labels()
    weight = torch.randn(p.c, p.a, generator=p.generator(4))
    logits = torch.einsum('na...,ca->nc...', features, weight)
    assume(p.ignore_index is None or (labels.long() != p.ignore_index).any())
    got = loss(features, logits, labels, weight, 0)
    plain = F.cross_entropy(logits, labels.long(), ignore_index=-100 if
                            p.ignore_index is None else p.ignore_index)
    torch.testing.assert_close(got, plain, rtol=0, atol=0, equal_nan=True)
    counted = labels.long() != p.ignore_index if p.ignore_index is not None \
        else torch.ones_like(labels, dtype=torch.bool)
    assert loss.estimator.count.sum() == counted.sum()


@given(problems(), st.sampled_from([torch.bfloat16, torch.float16]))
def test_autocast_forward_and_backward(p, half):
    """Forward *and* backward inside CPU autocast: finite, and close to
    the same step in float32."""
    assume(p.n and p.ratio)
    features, labels = p.features().float(), p.labels()
    assume(p.ignore_index is None or (labels.long() != p.ignore_index).any())
    results = []
    for autocast in (False, True):
        torch.manual_seed(0)
        fc = torch.nn.Conv2d(p.a, p.c, 1) if p.spatial else torch.nn.Linear(
            p.a, p.c)
        loss = ISDALoss(p.c, p.a, 'full' if p.full else 'diagonal',
                        p.ignore_index, packed=p.kind == 'packed')
        x = features.view(features.shape[:2] + (-1, 1)) if p.spatial \
            else features
        y = labels.view(labels.shape[:1] + (-1, 1)) if p.spatial else labels
        with torch.autocast('cpu', dtype=half, enabled=autocast):
            value = loss(x, fc(x), y, fc.weight.view(p.c, p.a), p.ratio)
            value.backward()
        results.append((value.float(), fc.weight.grad.float()))
    (plain, plain_grad), (value, grad) = results
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    # half-precision logits: a few ulps of bf16 per logit, scaled by lambda
    tol = 0.05 * (1 + p.ratio * p.scale) if half == torch.bfloat16 else \
        0.01 * (1 + p.ratio * p.scale)
    torch.testing.assert_close(value, plain, rtol=tol, atol=tol)
    del grad, plain_grad  # finite is what half precision promises


# -- bad input ---------------------------------------------------------------

CORRUPTIONS = {
    # name: (argument the message must name, error type)
    'float labels': ('labels', TypeError),
    'bool labels': ('labels', TypeError),
    'labels shape': ('labels', ValueError),
    'label out of range': ('num_classes and ignore_index', ValueError),
    'integer logits': ('logits', TypeError),
    'weight rows': ('weight', ValueError),
    'covariance shape': ('covariance', ValueError),
    'negative ratio': ('ratio', ValueError),
    'nan ratio': ('ratio', ValueError),
}


def corrupt(name, p, logits, labels, weight, cov, ratio):
    if name == 'float labels':
        labels = labels.float()
    elif name == 'bool labels':
        labels = labels > 0
    elif name == 'labels shape':
        labels = labels[..., None]
    elif name == 'label out of range':
        labels = labels.long().flatten()
        labels[0] = p.c
        labels = labels.view((p.n, ) + p.spatial)
    elif name == 'integer logits':
        logits = logits.long()
    elif name == 'weight rows':
        weight = torch.randn(p.c + 1, p.a)
    elif name == 'covariance shape':
        cov = torch.cat([cov, cov])
    elif name == 'negative ratio':
        ratio = -0.5
    elif name == 'nan ratio':
        ratio = float('nan')
    return logits, labels, weight, cov, ratio


@given(problems(), st.sampled_from(sorted(CORRUPTIONS)))
def test_bad_input_is_a_clear_error_and_changes_nothing(p, name):
    assume(p.n and p.kind != 'packed')
    argument, error = CORRUPTIONS[name]
    loss = ISDALoss(p.c, p.a, 'full' if p.full else 'diagonal',
                    p.ignore_index)
    features, labels = p.features(), p.labels()
    weight = torch.randn(p.c, p.a)
    logits = torch.einsum('na...,ca->nc...', features.float(), weight)
    bad = corrupt(name, p, logits, labels, weight, p.covariance(), p.ratio)
    with pytest.raises(error, match=argument):
        isda_augment(*bad, ignore_index=p.ignore_index)
    if name != 'covariance shape':  # the loss has its own covariance
        before = {k: v.clone() for k, v in loss.state_dict().items()}
        logits, labels, weight, _, ratio = bad
        with pytest.raises((TypeError, ValueError)):
            loss(features, logits, labels, weight, ratio)
        for key, value in loss.state_dict().items():
            assert torch.equal(value, before[key]), key


@given(problems(spatial=False), st.sampled_from(['negative', 'nan',
                                                 'shape']))
def test_bad_class_weights_are_refused_before_any_change(p, bad):
    assume(p.n)
    est = make_estimator(p)
    est.update(p.features(0), soft_targets(p, 'mixed').float())
    before = {k: v.clone() for k, v in est.state_dict().items()}
    weights = soft_targets(p, 'dense', salt=1).float()
    if bad == 'negative':
        weights[0, 0] = -0.1
    elif bad == 'nan':
        weights[-1, -1] = float('nan')
    else:
        weights = weights[:, :-1] if p.c > 1 else weights[:-1]
    with pytest.raises(ValueError, match='class weights'):
        est.update(p.features(1), weights)
    for name, value in est.state_dict().items():
        assert torch.equal(value, before[name]), name

import pytest
import torch
from isda_reference import reference_statistics

from isda_mm.core import CovarianceEstimator, moments

C, A, IGNORE = 5, 4, 255
pytestmark = pytest.mark.usefixtures('segment_sums')
KINDS = ['full', 'diagonal']


def make_batches(sizes, present=None, ignore_frac=0.2):
    batches = []
    for n in sizes:
        classes = torch.tensor(present or list(range(C)))
        labels = classes[torch.randint(len(classes), (n, ))]
        labels[torch.rand(n) < ignore_frac] = IGNORE
        # An offset mean makes the pooled formula's cross term matter.
        features = torch.randn(n, A) * 2 + labels.clamp(max=C)[:, None]
        batches.append((features, labels))
    return batches


def assert_matches_reference(est, batches, atol):
    mean, cov, count = reference_statistics(
        batches, C, IGNORE, full=est.covariance_kind == 'full')
    assert torch.equal(est.count, count)
    torch.testing.assert_close(est.mean.double(), mean, rtol=0, atol=atol)
    torch.testing.assert_close(
        est.covariance.double(), cov, rtol=0, atol=atol)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('dtype, atol', [(torch.float64, 1e-12),
                                         (torch.float32, 1e-5)])
def test_update_matches_reference(kind, dtype, atol):
    # Batches of many sizes, one sample of a class, classes absent.
    batches = make_batches([1, 7, 16, 3, 30])
    batches += make_batches([9, 2], present=[1, 3])
    est = CovarianceEstimator(C, A, kind, ignore_index=IGNORE, dtype=dtype)
    for i, (features, labels) in enumerate(batches):
        assert est.update(features, labels)
        assert_matches_reference(est, batches[:i + 1], atol)


@pytest.mark.parametrize('kind', KINDS)
def test_absent_classes_untouched(kind):
    est = CovarianceEstimator(C, A, kind, ignore_index=IGNORE)
    est.update(*make_batches([40], ignore_frac=0)[0])
    before = {k: v.clone() for k, v in est.state_dict().items()}
    est.update(*make_batches([10], present=[2], ignore_frac=0)[0])
    for name, value in est.state_dict().items():
        others = [c for c in range(C) if c != 2]
        assert torch.equal(value[others], before[name][others]), name
        assert not torch.equal(value[2], before[name][2]), name


@pytest.mark.parametrize('kind', KINDS)
def test_all_ignored_batch_changes_nothing(kind):
    est = CovarianceEstimator(C, A, kind, ignore_index=IGNORE)
    est.update(*make_batches([20])[0])
    before = {k: v.clone() for k, v in est.state_dict().items()}
    assert est.update(torch.randn(6, A), torch.full((6, ), IGNORE))
    assert est.update(torch.randn(0, A), torch.zeros(0, dtype=torch.long))
    for name, value in est.state_dict().items():
        assert torch.equal(value, before[name])


def test_count_exact_past_float32_integers():
    est = CovarianceEstimator(C, A, 'diagonal')
    n = 2**24 + 1  # float32(n) == 2**24: a float counter loses samples here
    est.count[0] = n
    est.weight_sum[0] = n
    est.mean[0] = 1.0
    x = torch.full((1, A), 1.0 + (n + 1))
    est.update(x, torch.tensor([0]))
    assert est.count[0].item() == n + 1
    # w = 1 / (n + 1) moves the mean by exactly (x - mean) / (n + 1) = 1.
    torch.testing.assert_close(est.mean[0], torch.full((A, ), 2.0))


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('half', [torch.float16, torch.bfloat16])
def test_half_precision_features(kind, half):
    batches = [(f.to(half), y) for f, y in make_batches([16, 32, 8])]
    est = CovarianceEstimator(C, A, kind, ignore_index=IGNORE)
    with torch.autocast('cpu', dtype=half):
        for features, labels in batches:
            est.update(features, labels)
    assert est.mean.dtype == est.covariance.dtype == torch.float32
    assert_matches_reference(est, batches, atol=1e-5)


@pytest.mark.parametrize('kind', KINDS)
def test_nonfinite_batch_rejected(kind):
    est = CovarianceEstimator(C, A, kind, ignore_index=IGNORE)
    est.update(*make_batches([20])[0])
    before = {k: v.clone() for k, v in est.state_dict().items()}
    for bad in (float('nan'), float('inf'), -float('inf')):
        features, labels = make_batches([12], ignore_frac=0)[0]
        features[3, 1] = bad
        with pytest.warns(UserWarning, match='NaN or Inf'):
            assert not est.update(features, labels)
        for name, value in est.state_dict().items():
            assert torch.equal(value, before[name]), name
    # A NaN in an ignored sample is not part of the statistics.
    features, labels = make_batches([12], ignore_frac=0)[0]
    features[0], labels[0] = float('nan'), IGNORE
    assert est.update(features, labels)
    assert torch.isfinite(est.covariance).all()


@pytest.mark.parametrize('features, labels, error, match', [
    (torch.randn(4, A + 1), torch.zeros(4, dtype=torch.long), ValueError,
     r'feature_dim=4'),
    (torch.randn(4), torch.zeros(4, dtype=torch.long), ValueError,
     r'shape \(N, 4\) or \(N, 4, \*\)'),
    # Per-position features take per-position labels.
    (torch.randn(4, A, 1), torch.zeros(4, dtype=torch.long), ValueError,
     r'labels of shape \(4, 1\)'),
    (torch.randn(4, A), torch.zeros(3, dtype=torch.long), ValueError,
     r'labels of shape \(4,\)'),
    (torch.randn(4, A), torch.tensor([0, 1, C, 2]), ValueError,
     r'label 5 is outside \[0, 5\).*ignore_index=255'),
    (torch.randn(4, A), torch.tensor([0, -1, 1, 2]), ValueError,
     r'label -1 is outside'),
    (torch.randn(4, A), torch.zeros(4), ValueError,
     r'class weights must be \(N, 5\)'),
    (torch.randn(2, A), -torch.eye(2, 5), ValueError, r'non-negative'),
    (torch.randn(4, A), torch.zeros(4, dtype=torch.bool), TypeError,
     r'integer tensor'),
    (torch.ones(4, A, dtype=torch.long), torch.zeros(4, dtype=torch.long),
     TypeError, r'floating tensor'),
    (torch.randn(4, A, device='meta'), torch.zeros(4, dtype=torch.long),
     ValueError, r'statistics are on cpu'),
])
def test_bad_input_raises_and_keeps_statistics(features, labels, error,
                                               match):
    est = CovarianceEstimator(C, A, 'full', ignore_index=IGNORE)
    est.update(*make_batches([20])[0])
    before = {k: v.clone() for k, v in est.state_dict().items()}
    with pytest.raises(error, match=match):
        est.update(features, labels)
    for name, value in est.state_dict().items():
        assert torch.equal(value, before[name]), name


@pytest.mark.parametrize('kwargs, match', [
    (dict(covariance='lowrank'), r"covariance must be one of \('full'"),
    (dict(num_classes=0), r'num_classes must be a positive int, got 0'),
    (dict(feature_dim=2.0), r'feature_dim must be a positive int'),
    (dict(dtype=torch.float16), r'dtype must be torch.float32 or'),
])
def test_bad_arguments(kwargs, match):
    args = dict(num_classes=C, feature_dim=A) | kwargs
    with pytest.raises(ValueError, match=match):
        CovarianceEstimator(**args)


@pytest.mark.parametrize('kind, shape', [('full', (C, A, A)),
                                         ('diagonal', (C, A))])
def test_state_dict_round_trip(kind, shape):
    est = CovarianceEstimator(C, A, kind)
    est.update(*make_batches([30], ignore_frac=0)[0])
    state = est.state_dict()
    assert set(state) == {'mean', 'covariance', 'count', 'weight_sum'}
    assert state['covariance'].shape == shape
    assert state['count'].dtype == torch.int64
    assert torch.equal(state['weight_sum'], state['count'].double())
    other = CovarianceEstimator(C, A, kind)
    other.load_state_dict(state)
    for name, value in other.state_dict().items():
        assert torch.equal(value, state[name])
    # A checkpoint from before soft targets: every sample weighed 1.
    old = CovarianceEstimator(C, A, kind)
    old.load_state_dict({k: v for k, v in state.items() if k != 'weight_sum'})
    assert torch.equal(old.weight_sum, state['weight_sum'])


def test_packed_storage_matches_full():
    batches = make_batches([9, 30, 1, 17])
    full = CovarianceEstimator(C, A, 'full', ignore_index=IGNORE)
    packed = CovarianceEstimator(C, A, 'full', ignore_index=IGNORE,
                                 packed=True)
    assert packed.covariance.shape == (C, A * (A + 1) // 2)
    for features, labels in batches:
        full.update(features, labels)
        packed.update(features, labels)
    assert torch.equal(full.count, packed.count)
    assert torch.equal(full.mean, packed.mean)
    # Equal up to float32 rounding (the dense lower triangle is computed,
    # the packed one mirrored).
    for c in range(C):
        torch.testing.assert_close(packed.class_covariance(c),
                                   full.covariance[c], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(packed.summary()['mean_trace'],
                               full.summary()['mean_trace'])
    assert_matches_reference(packed_as_full(packed), batches, atol=1e-5)


def packed_as_full(est):
    out = CovarianceEstimator(C, A, 'full')
    out.mean.copy_(est.mean)
    out.count.copy_(est.count)
    out.covariance.copy_(
        torch.stack([est.class_covariance(c) for c in range(C)]))
    return out


def test_packed_needs_full():
    with pytest.raises(ValueError, match="set covariance='full'"):
        CovarianceEstimator(C, A, 'diagonal', packed=True)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('contiguous', [False, True])
@pytest.mark.parametrize('chunk', [None, 2 * A])
def test_per_pixel_layout_equals_per_sample(kind, contiguous, chunk,
                                            monkeypatch):
    # Channels last or first in memory, in one chunk or chunks of two
    # pixels: the statistics of the same samples as rows. Ignored pixels'
    # NaN features reach none of them.
    if chunk:
        monkeypatch.setattr(moments, 'CHUNK', chunk)
    features, labels = make_batches([24])[0]
    assert (labels == IGNORE).any()
    features[labels == IGNORE] = float('nan')
    rows = CovarianceEstimator(C, A, kind, ignore_index=IGNORE)
    pixels = CovarianceEstimator(C, A, kind, ignore_index=IGNORE)
    rows.update(features, labels)
    maps = features.view(2, 3, 4, A).permute(0, 3, 1, 2)
    pixels.update(maps.contiguous() if contiguous else maps,
                  labels.view(2, 3, 4))
    assert torch.isfinite(rows.covariance).all()
    for name, value in rows.state_dict().items():
        torch.testing.assert_close(pixels.state_dict()[name], value)

import pytest
import torch
from host_syncs import count_host_syncs

from isda_mm.core import CovarianceEstimator, ISDALoss
from isda_mm.core.index import index_classes

C, IGNORE = 6, 255


def test_classes_rows_and_counts():
    labels = torch.tensor([[4, 1, IGNORE, 4], [1, 1, 5, IGNORE]])
    features = torch.randn(2, 3, 4)
    index = index_classes(labels, C, IGNORE, 'test', features)
    assert index.host_classes == [1, 4, 5]
    assert index.host_counts == [3, 2, 1]
    assert torch.equal(index.classes, torch.tensor([1, 4, 5]))
    assert torch.equal(index.counts, torch.tensor([3, 2, 1]))
    # Each sample's row in ``classes``; ignored samples point past them.
    assert torch.equal(index.rows, torch.tensor([[1, 0, 3, 1], [0, 0, 2, 3]]))
    assert index.finite


def test_nonfinite_counted_sample_only():
    labels = torch.tensor([[0, IGNORE]])
    features = torch.ones(1, 2, 2)
    features[0, 1, 1] = float('nan')  # the ignored sample
    assert index_classes(labels, C, IGNORE, 'test', features).finite
    features[0, 0, 0] = float('inf')
    assert not index_classes(labels, C, IGNORE, 'test', features).finite


def test_seen_counts_come_with_the_same_copy():
    seen = torch.arange(C) * 10
    index = index_classes(torch.tensor([[2, 5, 2]]), C, None, 'test',
                          seen=seen)
    assert index.host_seen == [20, 50]


@pytest.mark.parametrize('bad', [C, -1])
def test_bad_label_named(bad):
    with pytest.raises(ValueError,
                       match=rf'test: label {bad} is outside \[0, 6\)'):
        index_classes(torch.tensor([[0, bad]]), C, IGNORE, 'test')


@pytest.mark.usefixtures('segment_sums')
@pytest.mark.parametrize('kind', ['full', 'diagonal'])
@pytest.mark.parametrize('pixels', [False, True])
def test_isda_step_syncs_with_the_host_once(kind, pixels):
    loss = ISDALoss(C, 4, kind, ignore_index=IGNORE)
    shape = (2, 4, 3, 3) if pixels else (12, 4)
    features = torch.randn(shape)
    logits = torch.randn(shape[:1] + (C, ) + shape[2:], requires_grad=True)
    labels = torch.randint(C, shape[:1] + shape[2:])
    labels.view(-1)[::4] = IGNORE
    weight = torch.randn(C, 4, requires_grad=True)
    with count_host_syncs() as syncs:
        out = loss.augment(features, logits, labels, weight, 0.5)
        out.sum().backward()
    assert syncs.counts == {'tolist': 1}


@pytest.mark.parametrize('kind, packed', [('full', False), ('full', True),
                                          ('diagonal', False)])
def test_summary_never_syncs(kind, packed):
    est = CovarianceEstimator(C, 4, kind, packed=packed)
    est.update(torch.randn(12, 4) * 2, torch.randint(C, (12, )))
    with count_host_syncs() as syncs:
        summary = est.summary()
    assert syncs.total == 0
    seen = est.count > 0
    full = torch.stack([est.class_covariance(c) for c in range(C)]) \
        if kind == 'full' else torch.diag_embed(est.covariance)
    trace = torch.diagonal(full, dim1=1, dim2=2).sum(1)[seen].mean()
    assert summary['classes_seen'] == seen.sum()
    torch.testing.assert_close(summary['mean_trace'], trace)

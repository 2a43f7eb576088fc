"""The estimator under torch.distributed: two gloo processes on the CPU."""
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from isda_mm.core import CovarianceEstimator

C, A, IGNORE = 4, 3, 255


def rank_batches(rank):
    """Uneven batch sizes; class 3 only on rank 1; a NaN batch on rank 1."""
    g = torch.Generator().manual_seed(rank)
    batches = []
    for step, n in enumerate([5, 9, 2] if rank == 0 else [11, 1, 7]):
        labels = torch.randint(3 if rank == 0 else 4, (n, ), generator=g)
        labels[0] = IGNORE if n > 1 else labels[0]
        features = torch.randn(n, A, generator=g) + labels.clamp(max=C)[:,
                                                                       None]
        if rank == 1 and step == 2:
            features[1, 0] = float('nan')
        batches.append((features, labels))
    return batches


def mixed(labels):
    """Class weights as Mixup makes them (ignored labels become class 0)."""
    onehot = torch.nn.functional.one_hot(labels.clamp(max=C - 1), C).float()
    return 0.6 * onehot + 0.4 * onehot.roll(1, 0)


CASES = [(kind, sync, soft) for kind in ('full', 'diagonal')
         for sync, soft in ((True, False), (True, True), (False, False))]


def worker(rank, store, out):
    """Every case in one process group: spawning costs more than them all."""
    dist.init_process_group('gloo', init_method=f'file://{store}',
                            rank=rank, world_size=2)
    for kind, sync, soft in CASES:
        est = CovarianceEstimator(C, A, kind, ignore_index=IGNORE,
                                  sync_ranks=sync)
        with warnings.catch_warnings(record=True):
            finite = [est.update(features, mixed(labels) if soft else labels)
                      for features, labels in rank_batches(rank)]
        torch.save(dict(est.state_dict(), finite=finite),
                   f'{out}-{kind}-{sync}-{soft}-{rank}.pt')
    dist.destroy_process_group()


def single_process(kind, ranks, soft=False):
    est = CovarianceEstimator(C, A, kind, ignore_index=IGNORE)
    per_rank = [rank_batches(r) for r in ranks]
    with warnings.catch_warnings(record=True):
        for step in zip(*per_rank):
            good = [(f, mixed(y) if soft else y) for f, y in step
                    if torch.isfinite(f).all()]
            if good:
                est.update(torch.cat([f for f, _ in good]),
                           torch.cat([y for _, y in good]))
    return est.state_dict()


@pytest.fixture(scope='module')
def states(tmp_path_factory):
    """Both ranks' state dicts per case."""
    tmp = tmp_path_factory.mktemp('ddp')
    out = str(tmp / 'state')
    mp.spawn(worker, args=(tmp / 'store', out), nprocs=2)
    return {case: [torch.load(f'{out}-{"-".join(map(str, case))}-{r}.pt')
                   for r in range(2)] for case in CASES}


@pytest.mark.parametrize('kind', ['full', 'diagonal'])
@pytest.mark.parametrize('soft', [False, True], ids=['labels', 'weights'])
def test_synchronised_statistics_equal_one_process(states, kind, soft):
    states = states[kind, True, soft]
    expected = single_process(kind, ranks=[0, 1], soft=soft)
    for name in expected:
        assert torch.equal(states[0][name], states[1][name]), name
        torch.testing.assert_close(states[0][name], expected[name],
                                   rtol=1e-6, atol=1e-6)
    assert expected['count'][3] > 0  # the rank-1-only class is there


@pytest.mark.parametrize('case', CASES, ids=lambda c: '-'.join(map(str, c)))
def test_update_reports_this_ranks_batch(states, case):
    """A rank whose own batch was rejected hears False, though the other
    rank's batch was merged (the full update gathers rows: their finiteness
    is not this rank's)."""
    assert [s['finite'] for s in states[case]] == [[True] * 3,
                                                   [True, True, False]]


@pytest.mark.parametrize('kind', ['full', 'diagonal'])
def test_per_rank_statistics_stay_apart(states, kind):
    states = states[kind, False, False]
    for rank, state in enumerate(states):
        expected = single_process(kind, ranks=[rank])
        for name in expected:
            torch.testing.assert_close(state[name], expected[name])
    assert states[0]['count'][3] == 0 and states[1]['count'][3] > 0

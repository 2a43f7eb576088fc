"""Two gloo processes training through mmengine's MMDistributedDataParallel."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.runner import Runner
from tiny_isda import runner_cfg

EPOCHS, SAMPLES = 2, 24


CASES = [(False, True), (True, True), (False, False)]  # find_unused, sync


def worker(rank, tmp_path):
    """Every case in one process group: spawning costs more than them all."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')
    # mmengine's own init would call torch.cuda.set_device: start gloo here.
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=rank, world_size=2)
    for find_unused, sync in CASES:
        name = f'{find_unused}-{sync}'
        cfg = runner_cfg(
            tmp_path / name,
            head=dict(sync_ranks=sync),
            batch_size=3,
            launcher='pytorch')
        # Runner reads the wrapper's settings from its full config.
        wrapper = dict(
            type='MMDistributedDataParallel',
            device_ids=None,  # CPU modules take none
            broadcast_buffers=False,
            find_unused_parameters=find_unused)
        runner = Runner(**cfg, cfg=dict(model_wrapper_cfg=wrapper))
        runner.train()
        state = runner.model.module.head.isda.estimator.state_dict()
        torch.save(state, tmp_path / f'{name}-rank{rank}.pt')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Both ranks' statistics per (find_unused, sync) case."""
    tmp = tmp_path_factory.mktemp('ddp')
    mp.spawn(worker, args=(tmp, ), nprocs=2)
    return {case: [torch.load(tmp / f'{case[0]}-{case[1]}-rank{r}.pt')
                   for r in range(2)] for case in CASES}


@pytest.mark.parametrize('find_unused', [False, True])
def test_ranks_hold_identical_global_statistics(trained, find_unused):
    states = trained[find_unused, True]
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name
    # Every rank counted every sample of both ranks' shards.
    assert states[0]['count'].sum() == EPOCHS * SAMPLES


def test_per_rank_statistics(trained):
    states = trained[False, False]
    assert sum(s['count'].sum() for s in states) == EPOCHS * SAMPLES
    assert not torch.equal(states[0]['mean'], states[1]['mean'])

"""Mean Teacher and temporal ensembling under mmengine's
MMDistributedDataParallel, two gloo processes on the CPU: every rank holds
the same teacher, ensemble and ISDA statistics, equal to one process that
trains on the same global batches (each rank's slice, concatenated in rank
order). The net has no BN, dropout or input noise, so a global batch split
across ranks gives the same gradients."""
import os
import uuid
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.runner import Runner
from mmpretrain.registry import DATA_SAMPLERS, MODELS
from torch import nn

import isda_mm  # noqa: F401
from isda_mm.classification.semi import SemiSupervisedBatchSampler

from .test_semi_data import TinySemiImages  # noqa: F401  (registers it)

ITERS, PER_RANK, LABELED_PER_RANK = 4, 4, 2
METHODS = {
    'mean-teacher': dict(type='ISDAMeanTeacher', ema_decay=(0.5, 0.8),
                         rampup_iters=2),
    'temporal-ensembling': dict(type='ISDATemporalEnsembling',
                                num_images=30, rampup_iters=2),
}
TWO_VIEWS = [dict(type='MultiView', num_views=2, transforms=[[]])]


@MODELS.register_module(force=True)
class TinyFlatNet(nn.Module):
    """conv-ReLU: no BN (a split batch changes batch statistics), no
    dropout."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1),
                                    nn.ReLU())

    def forward(self, x):
        return (self.layers(x), )


@DATA_SAMPLERS.register_module(force=True)
class RankOrderBatchSampler:
    """One process's batches: both ranks' slices of each global batch of
    ``SemiSupervisedBatchSampler``, concatenated in rank order."""

    def __init__(self, sampler, batch_size, num_labeled):
        self.sampler = sampler  # mmengine's DistSamplerSeedHook reads it
        self.ranks = [SemiSupervisedBatchSampler(
            SimpleNamespace(dataset=sampler.dataset, seed=sampler.seed,
                            rank=rank, world_size=2), batch_size, num_labeled)
            for rank in range(2)]

    def __iter__(self):
        for parts in zip(*self.ranks):
            yield [i for part in parts for i in part]

    def __len__(self):
        return len(self.ranks[0])


def runner_cfg(work_dir, method, batch_sampler='SemiSupervisedBatchSampler',
               **kwargs):
    views = TWO_VIEWS if method == 'mean-teacher' else []
    return dict(
        model=dict(
            METHODS[method],
            data_preprocessor=dict(mean=[127.5], std=[127.5]),
            backbone=dict(type='TinyFlatNet'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='ISDALinearClsHead', num_classes=3,
                      in_channels=4, lambda0=0.5),
            consistency_weight=3.0),
        work_dir=str(work_dir),
        train_dataloader=dict(
            batch_size=PER_RANK, num_workers=0,
            dataset=dict(type='SemiSupervisedDataset', num_labels=6,
                         dataset=dict(type='TinySemiImages', pipeline=[
                             *views, dict(type='PackInputs')])),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_sampler=dict(type=batch_sampler,
                               num_labeled=LABELED_PER_RANK)),
        train_cfg=dict(by_epoch=False, max_iters=ITERS),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5)),
        custom_hooks=[dict(type='SemiSupervisedHook')],
        default_hooks=dict(checkpoint=None, logger=None),
        randomness=dict(seed=0),
        default_scope='mmpretrain',
        log_level='WARNING',
        experiment_name=f'semi_ddp_{uuid.uuid4().hex}',
        **kwargs)


def worker(rank, tmp_path):
    """Both methods in one process group: spawning costs more than
    training them."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')
    # mmengine's own init would call torch.cuda.set_device: start gloo here.
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=rank, world_size=2)
    for method in METHODS:
        wrapper = dict(type='MMDistributedDataParallel', device_ids=None,
                       broadcast_buffers=False,
                       find_unused_parameters=False)
        runner = Runner(**runner_cfg(tmp_path / method, method,
                                     launcher='pytorch'),
                        cfg=dict(model_wrapper_cfg=wrapper))
        runner.train()
        torch.save(runner.model.module.state_dict(),
                   tmp_path / f'{method}-rank{rank}.pt')
    dist.destroy_process_group()


@pytest.fixture(scope='module')
def states(tmp_path_factory):
    """Per method: both ranks' state dicts and one process's."""
    tmp = tmp_path_factory.mktemp('semi_ddp')
    mp.spawn(worker, args=(tmp, ), nprocs=2)
    out = {}
    for method in METHODS:
        runner = Runner(**runner_cfg(
            tmp / f'{method}-single', method,
            batch_sampler='RankOrderBatchSampler'))
        runner.train()
        out[method] = [torch.load(tmp / f'{method}-rank{r}.pt')
                       for r in range(2)] + [runner.model.state_dict()]
    return out


@pytest.mark.parametrize('method', list(METHODS))
def test_ranks_hold_one_process_state(states, method):
    rank0, rank1, single = states[method]
    assert rank0.keys() == single.keys()
    for key, value in single.items():
        assert torch.equal(rank0[key], rank1[key]), key
        if value.dtype.is_floating_point:
            torch.testing.assert_close(rank0[key], value, rtol=1e-5,
                                       atol=1e-6, msg=key)
        else:
            assert torch.equal(rank0[key], value), key
    # the state that matters moved: statistics of every labeled image of
    # both ranks, the teacher's updates, every image the ensemble saw
    labeled = ITERS * 2 * LABELED_PER_RANK
    assert int(single['head.isda.estimator.count'].sum()) == labeled
    if method == 'mean-teacher':
        assert int(single['teacher.steps']) == ITERS
        assert not torch.equal(single['teacher.module.head.fc.weight'],
                               single['head.fc.weight'])
    else:
        assert int(single['ensemble_updates'].sum()) > 2 * PER_RANK

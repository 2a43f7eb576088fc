"""Mean Teacher + ISDA inside mmengine's Runner: exact resume, a tiny run
through tools/train.py (split written, log entries, checkpoint contents),
and every config under configs/classification/semi builds and trains a
step."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.structures import DataSample

import isda_mm  # noqa: F401

from .test_semi_data import TinySemiImages  # noqa: F401  (registers it)

ROOT = Path(__file__).parents[2]
SEMI_CONFIGS = sorted((ROOT / 'configs' / 'classification' /
                       'semi').glob('*.py'))
CIFAR10_JPG = ROOT / 'data' / 'cifar10' / 'meta' / 'train.txt'
ITERS = 6


class Crash(Hook):
    """Stops training once the checkpoint of iteration 3 is saved."""
    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter == 3:
            raise RuntimeError('simulated crash')


def runner_cfg(work_dir, **kwargs):
    cfg = dict(
        model=dict(
            type='ISDAMeanTeacher',
            data_preprocessor=dict(mean=[127.5], std=[127.5]),
            backbone=dict(type='LeNet5', num_classes=-1),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='ISDALinearClsHead', num_classes=3,
                      in_channels=120, lambda0=0.5),
            consistency_weight=5.0, rampup_iters=4, ema_decay=(0.5, 0.9),
            pseudo_label_threshold=0.3),
        work_dir=str(work_dir),
        train_dataloader=dict(
            batch_size=5, num_workers=0,
            dataset=dict(type='SemiSupervisedDataset', num_labels=6,
                         dataset=dict(type='TinySemiImages', pipeline=[
                             dict(type='Resize', scale=32),
                             dict(type='MultiView', num_views=2,
                                  transforms=[[]]),
                             dict(type='PackInputs')])),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_sampler=dict(type='SemiSupervisedBatchSampler',
                               num_labeled=2)),
        train_cfg=dict(by_epoch=False, max_iters=ITERS),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        param_scheduler=dict(type='MeanTeacherRampLR', by_epoch=False,
                             total_iters=ITERS, rampup_iters=2,
                             rampdown_iters=2, betas1=(0.9, 0.5),
                             betas2=(0.99, 0.999)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=3)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        default_scope='mmpretrain',
        log_level='WARNING',
        experiment_name=f'semi_{uuid.uuid4().hex}')
    cfg.update(kwargs)
    return cfg


def test_resume_is_exact(tmp_path):
    whole = Runner(**runner_cfg(tmp_path / 'whole'))
    whole.train()
    with pytest.raises(RuntimeError, match='simulated crash'):
        Runner(**runner_cfg(tmp_path / 'parts',
                            custom_hooks=[Crash()])).train()
    resumed = Runner(**runner_cfg(tmp_path / 'parts', resume=True))
    resumed.train()
    want, got = whole.model.state_dict(), resumed.model.state_dict()
    assert want.keys() == got.keys()
    assert {'teacher.steps', 'head.isda.estimator.covariance',
            'teacher.module.head.fc.weight'} <= set(got)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    assert int(got['teacher.steps']) == ITERS
    for name in ('train/consistency_weight', 'train/ema_momentum',
                 'train/isda_lambda', 'train/loss_consistency'):
        assert (whole.message_hub.get_scalar(name).data[0].tolist() ==
                resumed.message_hub.get_scalar(name).data[0].tolist()), name


CONFIG = """
default_scope = 'mmpretrain'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)
model = dict(
    type='ISDAMeanTeacher',
    data_preprocessor=dict(mean=[127.5], std=[127.5], to_rgb=False),
    backbone=dict(type='LeNet5', num_classes=-1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='ISDALinearClsHead', num_classes=3, in_channels=120,
              lambda0=0.5),
    rampup_iters=2, consistency_weight=1.0, input_noise=0.1)
views = [dict(type='RandomFlip', prob=0.5, direction='horizontal')]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='SemiSupervisedDataset', num_labels=6, seed=1,
                 dataset=dict(
                     type='CustomDataset', data_root='{data}',
                     data_prefix='train', pipeline=[
                         dict(type='LoadImageFromFile',
                              color_type='grayscale'),
                         dict(type='MultiView', num_views=2,
                              transforms=[views]),
                         dict(type='PackInputs')])),
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='SemiSupervisedBatchSampler', num_labeled=2))
val_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='{data}',
                 data_prefix='train', pipeline=[
                     dict(type='LoadImageFromFile', color_type='grayscale'),
                     dict(type='PackInputs')]),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy')
val_cfg = dict()
train_cfg = dict(by_epoch=False, max_iters=4, val_interval=4)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=0.003))
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                     interval=4))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='SemiSupervisedSplitHook')]
randomness = dict(seed=0)
"""


def test_train_py_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    for c in range(3):
        folder = tmp_path / 'data' / 'train' / f'class{c}'
        folder.mkdir(parents=True)
        for i in range(4):
            image = rng.normal(60 + 60 * c, 30, (32, 32)).clip(0, 255)
            cv2.imwrite(str(folder / f'{i}.png'), image.astype(np.uint8))
    config = tmp_path / 'mt.py'
    config.write_text(CONFIG.replace('{data}', str(tmp_path / 'data')))
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, 'tools/train.py', str(config), '--work-dir',
         str(work)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    split = json.loads((work / 'labeled_split.json').read_text())
    assert split['labels_per_class'] == [2, 2, 2] and split['seed'] == 1
    assert all(Path(p).is_file() for p in split['paths'])
    scalars = next(work.glob('*/vis_data/scalars.json'))
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    train = [r for r in logged if 'loss' in r]
    assert len(train) == 4
    for key in ('loss_sup', 'loss_consistency', 'consistency_weight',
                'ema_momentum', 'isda_lambda', 'num_labeled',
                'isda_cov_trace'):
        assert all(np.isfinite(r[key]) for r in train), key
    assert [r['num_labeled'] for r in train] == [2] * 4
    assert any('accuracy/top1' in r for r in logged)
    state = torch.load(work / 'iter_4.pth')['state_dict']
    # only the labeled images (2 per batch) reached the statistics
    assert int(state['head.isda.estimator.count'].sum()) == 8
    assert int(state['teacher.steps']) == 4


@pytest.fixture(scope='module')
def mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.mark.parametrize('path', SEMI_CONFIGS, ids=lambda p: p.name)
def test_semi_config_builds_and_trains_a_step(path, mmpretrain_scope):
    cfg = Config.fromfile(str(path))
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert type(model).__name__ == 'ISDAMeanTeacher'
    assert type(model.data_preprocessor).__name__ == (
        'MultiViewClsDataPreprocessor')
    assert model.uses_isda == ('-isda-' in path.name)
    labels = [0, 1, -1, -1]
    data = dict(
        inputs=[[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
                 for _ in labels] for _ in range(2)],
        data_samples=[DataSample().set_gt_label(y) for y in labels])
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    log = model.train_step(data, wrapper)
    assert torch.isfinite(log['loss']) and float(log['num_labeled']) == 2


@pytest.mark.skipif(not CIFAR10_JPG.exists(),
                    reason='CIFAR-10 JPEG copy not in data/cifar10')
def test_smoke_config_reads_the_jpeg_copy(monkeypatch, mmpretrain_scope):
    monkeypatch.chdir(ROOT)
    name = 'mean-teacher_convnet13_1xb32-isda-200it_cifar10-jpg-4k-labels.py'
    cfg = Config.fromfile(str(ROOT / 'configs' / 'classification' / 'semi' /
                              name))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 50000
    assert dataset.split()['labels_per_class'] == [400] * 10
    item = dataset[len(dataset)]  # image 0, label withheld
    assert [tuple(v.shape) for v in item['inputs']] == [(3, 32, 32)] * 2
    assert item['data_samples'].gt_label.tolist() == [-1]

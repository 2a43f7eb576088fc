"""Semi-supervised ISDA inside mmengine's Runner: SemiSupervisedHook moves
the teacher after each real optimizer step (every k-th under gradient
accumulation, never one update behind at validation or checkpoint) and is
required; exact resume for each method; a tiny run through tools/train.py
(split written, log entries, checkpoint contents); and one config per
method under configs/classification/semi builds and trains a step."""
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
from isda_mm.classification.semi import SemiSupervisedClassifier

from .test_semi_data import TinySemiImages  # noqa: F401  (registers it)
from .test_semi_model import TinySemiNet  # noqa: F401  (registers it)

ROOT = Path(__file__).parents[2]
SEMI = ROOT / 'configs' / 'classification' / 'semi'
CIFAR10_JPG = ROOT / 'data' / 'cifar10' / 'meta' / 'train.txt'
ITERS = 6
METHODS = {
    'mean-teacher': dict(type='ISDAMeanTeacher', ema_decay=(0.5, 0.9),
                         pseudo_label_threshold=0.3),
    'pi-model': dict(type='ISDAPiModel'),
    'temporal-ensembling': dict(type='ISDATemporalEnsembling',
                                num_images=30),
    'vat': dict(type='ISDAVAT', epsilon=1.0, xi=0.1, entropy_weight=0.1),
}
TWO_VIEWS = ('mean-teacher', 'pi-model')


def runner_cfg(work_dir, method='mean-teacher', **kwargs):
    views = [dict(type='MultiView', num_views=2, transforms=[[]])
             ] if method in TWO_VIEWS else []
    cfg = dict(
        model=dict(
            METHODS[method],
            data_preprocessor=dict(mean=[127.5], std=[127.5]),
            backbone=dict(type='TinySemiNet'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='ISDALinearClsHead', num_classes=3,
                      in_channels=4, lambda0=0.5),
            consistency_weight=5.0, rampup_iters=4),
        work_dir=str(work_dir),
        train_dataloader=dict(
            batch_size=5, num_workers=0,
            dataset=dict(type='SemiSupervisedDataset', num_labels=6,
                         dataset=dict(type='TinySemiImages', pipeline=[
                             *views, dict(type='PackInputs')])),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_sampler=dict(type='SemiSupervisedBatchSampler',
                               num_labeled=2)),
        train_cfg=dict(by_epoch=False, max_iters=ITERS),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        param_scheduler=dict(type='MeanTeacherRampLR', by_epoch=False,
                             total_iters=ITERS, rampup_iters=2,
                             rampdown_iters=2, betas1=(0.9, 0.5),
                             betas2=(0.99, 0.999)),
        custom_hooks=[dict(type='SemiSupervisedHook')],
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


@pytest.mark.parametrize('method', list(METHODS))
def test_resume_is_exact(tmp_path, method):
    """Resumed at iteration 3, a run ends as the uninterrupted one, bit
    for bit: weights, teacher, ensemble, ISDA statistics, logged values."""
    whole = Runner(**runner_cfg(tmp_path / 'whole', method))
    whole.train()
    resumed = Runner(**runner_cfg(tmp_path / 'resumed', method,
                                  load_from=str(tmp_path / 'whole' /
                                                'iter_3.pth'),
                                  resume=True))
    resumed.train()
    want, got = whole.model.state_dict(), resumed.model.state_dict()
    assert want.keys() == got.keys()
    expected = {'head.isda.estimator.covariance'}
    expected |= {'teacher.steps', 'teacher.module.head.fc.weight'} if (
        method == 'mean-teacher') else set()
    expected |= {'ensemble', 'ensemble_updates'} if (
        method == 'temporal-ensembling') else set()
    assert expected <= set(got)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    if method == 'mean-teacher':
        assert int(got['teacher.steps']) == ITERS
    if method == 'temporal-ensembling':
        assert int(got['ensemble_updates'].sum()) > 0
    for name in ('train/consistency_weight', 'train/isda_lambda',
                 'train/loss_consistency', 'train/loss'):
        assert (whole.message_hub.get_scalar(name).data[0].tolist() ==
                resumed.message_hub.get_scalar(name).data[0].tolist()), name


class Probe(Hook):
    """Records, after each iteration's other hooks and before each
    validation, the optimizer steps and the teacher's updates."""
    priority = 'LOWEST'

    def __init__(self):
        self.iters, self.vals = [], []
        self.student = None

    def _student(self, runner):
        return [p.detach().clone() for n, p in
                runner.model.named_parameters() if not n.startswith('t')]

    def before_train(self, runner):
        self.student = self._student(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        now = self._student(runner)
        moved = any(not torch.equal(a, b) for a, b in zip(now, self.student))
        self.student = now
        self.iters.append((moved, int(runner.model.teacher.steps)))

    def before_val(self, runner):
        self.vals.append((runner.iter, int(runner.model.teacher.steps)))


def test_teacher_moves_after_real_optimizer_steps(tmp_path):
    """Under accumulative_counts=2 the weights change at every second
    iteration and at the last; the teacher moves exactly then, and the
    validation and the checkpoints never see it one update behind."""
    probe = Probe()
    val = dict(
        batch_size=10, num_workers=0,
        dataset=dict(type='TinySemiImages',
                     pipeline=[dict(type='PackInputs')]),
        sampler=dict(type='DefaultSampler', shuffle=False))
    runner = Runner(**runner_cfg(
        tmp_path, train_cfg=dict(by_epoch=False, max_iters=5, val_interval=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1),
                           accumulative_counts=2),
        param_scheduler=None, val_dataloader=val, val_cfg=dict(),
        val_evaluator=dict(type='Accuracy'),
        custom_hooks=[dict(type='SemiSupervisedHook'), probe],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=1))))
    runner.train()
    moved = [m for m, _ in probe.iters]
    assert moved == [False, True, False, True, True]
    steps = [s for _, s in probe.iters]
    assert steps == [0, 1, 1, 2, 3]
    assert probe.vals == [(2, 1), (4, 2), (5, 3)]  # and at the end
    for it, want in enumerate(steps, 1):
        state = torch.load(tmp_path / f'iter_{it}.pth')['state_dict']
        assert int(state['teacher.steps']) == want, it


def test_a_runner_without_the_hook_fails_at_once(tmp_path):
    runner = Runner(**runner_cfg(tmp_path, custom_hooks=[]))
    with pytest.raises(RuntimeError, match='add custom_hooks'):
        runner.train()
    assert runner.iter == 0


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
custom_hooks = [dict(type='SemiSupervisedHook')]
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


TYPES = dict(zip(METHODS, ('ISDAMeanTeacher', 'ISDAPiModel',
                           'ISDATemporalEnsembling', 'ISDAVAT')))


@pytest.mark.parametrize('method', list(METHODS))
def test_smoke_config_builds_and_trains_a_step(method, mmpretrain_scope):
    """Each method's ISDA smoke config gives its model, with its number
    of views; (every config is built in a Runner by test_semi_configs.)"""
    path = SEMI / (f'{method}_convnet13_1xb32-isda-200it_'
                   'cifar10-jpg-4k-labels.py')
    cfg = Config.fromfile(str(path))
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert isinstance(model, SemiSupervisedClassifier)
    assert type(model).__name__ == TYPES[method] and model.uses_isda
    assert type(model.data_preprocessor).__name__ == (
        'MultiViewClsDataPreprocessor')
    assert cfg.custom_hooks == [dict(type='SemiSupervisedHook')]
    labels = [0, 1, -1, -1]
    views = [[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
              for _ in labels] for _ in range(model.num_views)]
    data = dict(
        inputs=views if model.num_views > 1 else views[0],
        data_samples=[DataSample(metainfo=dict(sample_idx=i)).set_gt_label(y)
                      for i, y in enumerate(labels)])
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

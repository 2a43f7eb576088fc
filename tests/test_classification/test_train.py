"""End to end through tools/train.py (and tools/dist_train.sh) on a tiny
image folder made in the test."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

import isda_mm  # noqa: F401

ROOT = Path(__file__).parents[2]
CLASSES, PER_CLASS, EPOCHS, BATCH = 3, 6, 2, 4

CONFIG = """
default_scope = 'mmpretrain'
custom_imports = dict(imports=['isda_dump_hook'],
                      allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(mean=[127.5], std=[127.5], to_rgb=False),
    backbone=dict(type='LeNet5', num_classes=-1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='ISDALinearClsHead', num_classes={classes}, in_channels=120,
        loss=dict(type='CrossEntropyLoss'), lambda0=0.5,
        covariance='full'))
pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='PackInputs')]
train_dataloader = dict(
    batch_size={batch}, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='{data}',
                 data_prefix='train', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
test_dataloader = dict(
    batch_size={batch}, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='{data}',
                 data_prefix='train', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='Accuracy')
test_cfg = dict()
train_cfg = dict(by_epoch=True, max_epochs={epochs})
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=1))
custom_hooks = [dict(type='DumpISDAStatistics')]
randomness = dict(seed=0)
"""


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cls')
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        folder = tmp / 'data' / 'train' / f'class{c}'
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            image = rng.normal(60 + 60 * c, 30, (32, 32)).clip(0, 255)
            cv2.imwrite(str(folder / f'{i}.png'), image.astype(np.uint8))
    path = tmp / 'isda_lenet.py'
    path.write_text(CONFIG.format(classes=CLASSES, batch=BATCH,
                                  epochs=EPOCHS, data=tmp / 'data'))
    return path


def run(args, work_dir, **extra_env):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / 'tests')]), **extra_env)
    done = subprocess.run(args + ['--work-dir', str(work_dir)], cwd=ROOT,
                          env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_train_py(config, tmp_path):
    run([sys.executable, 'tools/train.py', str(config)], tmp_path)
    scalars = next(tmp_path.glob('*/vis_data/scalars.json'))
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    iters = EPOCHS * -(-CLASSES * PER_CLASS // BATCH)
    assert len(logged) == iters
    assert all(np.isfinite(r['loss']) for r in logged)
    assert [r['isda_lambda'] for r in logged] == pytest.approx(
        [0.5 * i / iters for i in range(iters)], abs=1e-4)

    # The checkpoint (read with torch's safe loader) carries the statistics:
    # every training sample counted once per epoch.
    ckpt = torch.load(tmp_path / f'epoch_{EPOCHS}.pth')
    count = ckpt['state_dict']['head.isda.estimator.count']
    assert count.tolist() == [EPOCHS * PER_CLASS] * CLASSES

    # It loads into the stock head's config and predicts the same.
    cfg = Config.fromfile(config)
    isda_model = MODELS.build(cfg.model)
    cfg.model.head = dict(type='LinearClsHead', num_classes=CLASSES,
                          in_channels=120)
    stock_model = MODELS.build(cfg.model)
    for model in (isda_model, stock_model):
        load_checkpoint(model, str(tmp_path / f'epoch_{EPOCHS}.pth'))
        model.eval()
    images = torch.randn(5, 1, 32, 32)
    assert torch.equal(isda_model(images), stock_model(images))

    run([sys.executable, 'tools/test.py', str(config),
         str(tmp_path / f'epoch_{EPOCHS}.pth')], tmp_path / 'test')
    log = next((tmp_path / 'test').glob('*/*.log')).read_text()
    assert 'accuracy/top1' in log


def test_dist_train_sh_two_cpu_processes(config, tmp_path):
    with socket.socket() as sock:  # a free port, not a fixed 29500
        sock.bind(('127.0.0.1', 0))
        port = str(sock.getsockname()[1])
    run(['bash', 'tools/dist_train.sh', str(config), '2'], tmp_path,
        PORT=port)
    ranks = [torch.load(tmp_path / f'isda_rank{r}.pth') for r in range(2)]
    (name, ), state = list(ranks[0]), ranks[0]['head.isda.estimator']
    for key, value in state.items():
        assert torch.equal(value, ranks[1][name][key]), key
    assert state['count'].tolist() == [EPOCHS * PER_CLASS] * CLASSES


ZOO_MIXUP = """
_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)
# The one-word edit: the zoo's head type. Mixup + CutMix, label smoothing,
# AdamW and the 1000-way head stay the zoo's.
model = dict(head=dict(type='ISDAVisionTransformerClsHead'))
# A tiny image folder for ImageNet, with the zoo's own training pipeline.
train_dataloader = dict(
    batch_size={batch}, num_workers=0,
    dataset=dict(_delete_=True, type='CustomDataset', data_root='{data}',
                 data_prefix='train',
                 pipeline={{{{_base_.train_pipeline}}}}))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
train_cfg = dict(max_epochs=1)
param_scheduler = []  # the zoo's warm-up outlasts one epoch
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
"""


def test_zoo_mixup_recipe_trains_by_a_one_word_edit(tmp_path):
    rng = np.random.default_rng(1)
    for c in range(CLASSES):
        folder = tmp_path / 'data' / 'train' / f'class{c}'
        folder.mkdir(parents=True)
        for i in range(BATCH):
            image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f'{i}.png'), image)
    config = tmp_path / 'deit_isda.py'
    config.write_text(ZOO_MIXUP.format(batch=BATCH, data=tmp_path / 'data'))
    run([sys.executable, 'tools/train.py', str(config)], tmp_path / 'work')
    scalars = next((tmp_path / 'work').glob('*/vis_data/scalars.json'))
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    assert len(logged) == CLASSES and all(
        np.isfinite(r['loss']) and r['isda_lambda'] > 0 for r in logged[1:])
    state = torch.load(tmp_path / 'work' / 'epoch_1.pth')['state_dict']
    # Every image counted once in all: mixed ones by their Mixup/CutMix
    # weights, spread over the classes they mix.
    weight_sum = state['head.isda.estimator.weight_sum']
    assert weight_sum.sum().item() == pytest.approx(CLASSES * BATCH)
    assert (weight_sum[:CLASSES] > 0).all() and weight_sum[CLASSES:].sum() == 0

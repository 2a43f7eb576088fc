"""ISDA in a head a user writes: the README's section, as shipped in
projects/isda_custom_head, and ISDALoss in every toolkit's registry."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

import isda_mm  # noqa: F401

ROOT = Path(__file__).parents[2]
PROJECT = ROOT / 'projects' / 'isda_custom_head'


@pytest.fixture(scope='module')
def head_module():
    sys.path.insert(0, str(ROOT))
    try:
        yield importlib.import_module(
            'projects.isda_custom_head.isda_custom_head')
    finally:
        sys.path.remove(str(ROOT))


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmseg', 'mmdet'])
def test_isda_loss_in_every_registry(scope):
    registry = importlib.import_module(f'{scope}.registry').MODELS
    loss = registry.build(dict(type='ISDALoss', num_classes=3,
                               feature_dim=4, covariance='diagonal'))
    assert type(loss).__name__ == 'ISDALoss'


def samples(labels):
    return [DataSample().set_gt_label(y) for y in labels.tolist()]


def test_the_readme_head(head_module):
    torch.manual_seed(0)
    head = head_module.TwoLayerISDAHead(num_classes=4, in_channels=6,
                                        hidden=5, lambda0=0.0)
    feats, labels = (torch.randn(12, 6), ), torch.randint(4, (12, ))
    plain = F.cross_entropy(head(feats), labels)
    loss = head.loss(feats, samples(labels))['loss']
    torch.testing.assert_close(loss, plain)
    assert head.isda.estimator.count.sum() == 12
    head.lambda0 = 2.0
    loss = head.loss(feats, samples(labels))['loss']
    assert loss > plain  # the ISDA term only raises the other logits
    loss.backward()
    assert head.fc.weight.grad.abs().sum() > 0


def test_the_project_config_trains(tmp_path):
    rng = np.random.default_rng(0)
    for split in ('train', 'test'):
        for c in range(3):
            folder = tmp_path / 'data' / split / str(c)
            folder.mkdir(parents=True)
            for i in range(4):
                image = rng.normal(60 + 60 * c, 30, (8, 8)).clip(0, 255)
                cv2.imwrite(str(folder / f'{i}.png'), image.astype(np.uint8))
    config = PROJECT / 'configs' / \
        'lenet5-two-layer-isda-head_1xb64-30e_digits.py'
    data = str(tmp_path / 'data')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run(
        [sys.executable, 'tools/train.py', str(config), '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', 'train_cfg.max_epochs=1',
         'train_dataloader.batch_size=4',
         f'train_dataloader.dataset.data_root={data}',
         f'val_dataloader.dataset.data_root={data}',
         f'test_dataloader.dataset.data_root={data}'],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, timeout=600)
    scalars = next((tmp_path / 'work').glob('*/vis_data/scalars.json'))
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    assert all(np.isfinite(r['loss']) for r in logged if 'loss' in r)
    assert any('accuracy/top1' in r for r in logged)

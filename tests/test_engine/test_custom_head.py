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
from capture import layer_inputs
from isda_reference import reference_augment, reference_statistics
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


C, IN, HIDDEN, LOSS = 4, 6, 5, dict(type='CrossEntropyLoss', loss_weight=0.7,
                                     class_weight=[1.0, 2.0, 0.5, 1.5])


@pytest.mark.parametrize('lambda0', [0.0, 2.0], ids=[
    'TwoLayerISDAHead-lambda0=0', 'TwoLayerISDAHead-lambda0=2'])
def test_loss_matches_reference(head_module, lambda0):
    """Two batches: the statistics of every feature the classifier
    received (captured at ``fc``), and the loss and its gradients, are the
    float64 reference's (the README's head: full covariance, the stock
    class-weighted cross-entropy of the augmented logits)."""
    head = head_module.TwoLayerISDAHead(num_classes=C, in_channels=IN,
                                        hidden=HIDDEN, lambda0=lambda0,
                                        loss=LOSS).double()
    fc, est = head.fc, head.isda.estimator
    class_weight = torch.tensor(LOSS['class_weight'], dtype=torch.float64)
    batches = []
    tight = dict(rtol=1e-9, atol=1e-12)
    for _ in range(2):
        feats = (torch.randn(12, IN, dtype=torch.float64), )
        labels = torch.randint(C, (12, ))
        live = []

        def keep(module, args):  # the live input, with its gradient
            args[0].retain_grad()
            live.append(args[0])

        handle = fc.register_forward_pre_hook(keep)
        head.zero_grad()
        with layer_inputs(fc) as seen:
            loss = head.loss(feats, samples(labels))['loss']
        handle.remove()
        loss.backward()
        assert len(seen) == 1
        batches.append((seen[0], labels))
        mean, cov, count = reference_statistics(batches, C)
        assert torch.equal(est.count, count)
        torch.testing.assert_close(est.mean, mean, **tight)
        torch.testing.assert_close(est.covariance, cov, **tight)
        x = seen[0].requires_grad_()
        weight = fc.weight.detach().clone().requires_grad_()
        logits = x @ weight.T + fc.bias.detach()
        augmented = reference_augment(logits, labels, weight, cov, lambda0)
        want = LOSS['loss_weight'] * (-class_weight[labels] * augmented[
            torch.arange(12), labels].sub(augmented.logsumexp(1))).mean()
        want.backward()
        torch.testing.assert_close(loss, want, **tight)
        torch.testing.assert_close(fc.weight.grad, weight.grad, **tight)
        torch.testing.assert_close(live[0].grad, x.grad, **tight)


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

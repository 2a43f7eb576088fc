"""End to end through tools/train.py on a tiny segmentation set made in the
test: ISDA decode head and ISDA auxiliary head, each with its statistics."""
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
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

import isda_mm  # noqa: F401

ROOT = Path(__file__).parents[2]
CLASSES, IMAGES, SIZE, STRIDE = 3, 4, 32, 8

CONFIG = """
default_scope = 'mmseg'
custom_imports = dict(imports=['isda_dump_hook'],
                      allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[128, 128, 128], std=[64, 64, 64],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=({size}, {size})),
    backbone=dict(
        type='ResNetV1c', depth=18, out_indices=(2, 3),
        dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg,
        contract_dilation=True),
    decode_head=dict(
        type='{head}', in_channels=512, in_index=1, channels=16,
        dropout_ratio=0.1, num_classes={classes}, norm_cfg=norm_cfg,
        align_corners=False, lambda0=7.5, {head_args}
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    auxiliary_head=dict(
        type='ISDAFCNHead', in_channels=256, in_index=0, channels=8,
        num_convs=1, concat_input=False, dropout_ratio=0.1,
        num_classes={classes}, norm_cfg=norm_cfg, align_corners=False,
        lambda0=7.5,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='BaseSegDataset', data_root='{data}',
        metainfo=dict(classes=('a', 'b', 'c'),
                      palette=[[0, 0, 0], [1, 1, 1], [2, 2, 2]]),
        data_prefix=dict(img_path='img', seg_map_path='ann'),
        img_suffix='.png', seg_map_suffix='.png',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')]))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=1))
custom_hooks = [dict(type='DumpISDAStatistics')]
randomness = dict(seed=0)
"""
HEADS = {
    'ISDAFCNHead': 'num_convs=1, concat_input=False,',
    'ISDAASPPHead': 'dilations=(1, 2),',
}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg')
    rng = np.random.default_rng(0)
    (root / 'img').mkdir()
    (root / 'ann').mkdir()
    labels = []
    for i in range(IMAGES):
        label = rng.integers(0, CLASSES, (SIZE, SIZE)).astype(np.uint8)
        label[:, :6] = 255  # ignored pixels
        image = rng.normal(80 * label[..., None] % 255, 20,
                           (SIZE, SIZE, 3)).clip(0, 255)
        cv2.imwrite(str(root / 'img' / f'{i}.png'), image.astype(np.uint8))
        cv2.imwrite(str(root / 'ann' / f'{i}.png'), label)
        labels.append(torch.from_numpy(label))
    return root, torch.stack(labels)


def expected_counts(labels, epochs):
    """Non-ignored pixels per class at the heads' 1/8 resolution."""
    small = F.interpolate(labels[:, None].float(), size=SIZE // STRIDE,
                          mode='nearest').long().flatten()
    return epochs * torch.bincount(small[small != 255], minlength=CLASSES)


@pytest.mark.parametrize('head', HEADS)
def test_train_py(data, tmp_path, head):
    root, labels = data
    config = tmp_path / 'isda_seg.py'
    config.write_text(CONFIG.format(head=head, head_args=HEADS[head],
                                    classes=CLASSES, data=root, size=SIZE))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / 'tests')]))
    subprocess.run([sys.executable, 'tools/train.py', str(config),
                    '--work-dir', str(tmp_path)], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL, timeout=600)

    scalars = next(tmp_path.glob('*/vis_data/scalars.json'))
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    iters = 2 * IMAGES // 2
    assert [r['decode.isda_lambda'] for r in logged] == pytest.approx(
        [7.5 * i / iters for i in range(iters)], abs=1e-4)
    assert all(np.isfinite(r['decode.loss_ce']) and
               np.isfinite(r['aux.loss_ce']) for r in logged)

    stats = torch.load(tmp_path / 'isda_rank0.pth')
    want = expected_counts(labels, epochs=2)
    for name in ('decode_head.isda.estimator',
                 'auxiliary_head.isda.estimator'):
        assert torch.equal(stats[name]['count'], want), name
    assert not torch.equal(stats['decode_head.isda.estimator']['mean'][:, :8],
                           stats['auxiliary_head.isda.estimator']['mean'])

    # The checkpoint loads into the stock heads' config, same predictions.
    init_default_scope('mmseg')
    cfg = Config.fromfile(config)
    isda_model = MODELS.build(cfg.model)
    cfg.model.decode_head.type = head[4:]
    cfg.model.auxiliary_head.type = 'FCNHead'
    for key in ('decode_head', 'auxiliary_head'):
        cfg.model[key].pop('lambda0')
    stock_model = MODELS.build(cfg.model)
    for model in (isda_model, stock_model):
        load_checkpoint(model, str(tmp_path / 'epoch_2.pth'))
        model.eval()
    images = torch.randn(1, 3, SIZE, SIZE)
    assert torch.equal(isda_model(images), stock_model(images))

"""End to end through tools/train.py with the real ISDA RoI-head configs on a
tiny COCO-format set (boxes and polygon masks) made in the test."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData

import isda_mm  # noqa: F401

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / 'configs' / 'detection'
# COCO names, so the zoo's 80-class metainfo maps them to labels 0, 1, 2.
CLASSES = ('person', 'bicycle', 'car')
NUM_CLASSES, IMAGES, SIZE = 80, 4, 128
META = dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
            pad_shape=(SIZE, SIZE), batch_input_shape=(SIZE, SIZE),
            scale_factor=(1.0, 1.0))

CONFIG = """
_base_ = '{base}'
custom_imports = dict(imports=['isda_mm', 'isda_dump_hook'],
                      allow_failed_imports=False)
model = dict(backbone=dict(init_cfg=None))  # no download of ImageNet weights
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(
        data_root='{data}/', ann_file='train.json',
        data_prefix=dict(img='img/'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_mask={mask}),
                  dict(type='Resize', scale=({size}, {size}),
                       keep_ratio=True),
                  dict(type='PackDetInputs')]))
train_cfg = dict(max_epochs=1, val_interval=10)
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
default_hooks = dict(logger=dict(interval=1))
custom_hooks = [dict(type='RecordRoILabels'),
                dict(type='DumpISDAStatistics')]
randomness = dict(seed=0)
"""


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Bright rectangles (one per class, random places) on dark noise."""
    root = tmp_path_factory.mktemp('coco')
    (root / 'img').mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(IMAGES):
        image = rng.integers(0, 60, (SIZE, SIZE, 3)).astype(np.uint8)
        for label in range(len(CLASSES)):
            w, h = rng.integers(24, 56, 2)
            x, y = rng.integers(0, SIZE - 56, 2)
            image[y:y + h, x:x + w] = 80 * (label + 1)
            polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i + 1,
                category_id=label + 1, bbox=[int(v) for v in (x, y, w, h)],
                area=int(w * h), iscrowd=0,
                segmentation=[[int(v) for v in polygon]]))
        cv2.imwrite(str(root / 'img' / f'{i}.png'), image)
        images.append(dict(id=i + 1, file_name=f'{i}.png', width=SIZE,
                           height=SIZE))
    categories = [dict(id=k + 1, name=name) for k, name in enumerate(CLASSES)]
    (root / 'train.json').write_text(json.dumps(dict(
        images=images, annotations=annotations, categories=categories)))
    return root


def train(config, data, work_dir):
    cfg = work_dir / 'isda_det.py'
    mask = 'mask' in Path(config).name
    cfg.write_text(CONFIG.format(base=config, data=data, mask=mask,
                                 size=SIZE))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / 'tests')]))
    subprocess.run([sys.executable, 'tools/train.py', str(cfg),
                    '--work-dir', str(work_dir)], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL, timeout=900)
    scalars = next(work_dir.glob('*/vis_data/scalars.json'))
    return [json.loads(line) for line in scalars.read_text().splitlines()]


def roi_counts(records, background):
    """Per-class counts of the RoIs an ISDA head must have merged."""
    labels = torch.cat([labels[weights > 0] for labels, weights in records])
    if background == 'exclude':
        labels = labels[labels < NUM_CLASSES]
    return torch.bincount(labels, minlength=NUM_CLASSES + 1)


def tensor_outputs(model):
    """The detector's raw outputs (RPN and RoI heads) in eval mode."""
    torch.manual_seed(0)
    images = torch.randn(1, 3, SIZE, SIZE)
    sample = DetDataSample(metainfo=META)
    model.eval()
    with torch.no_grad():
        return model(images, [sample], mode='tensor')


# Faster R-CNN's ISDA head is Mask R-CNN's (Shared2FCBBoxHead): trained here
# with the mask branch beside it; its config is built in
# test_pretrained_configs.py and scored in the lambda0 = 0 test below.
@pytest.mark.parametrize('config', [
    'mask_rcnn/mask-rcnn_r50_fpn_isda-1x_coco.py',
])
def test_train_py(data, tmp_path, config):
    logged = train(CONFIGS / config, data, tmp_path)
    assert len(logged) == IMAGES // 2
    for record in logged:
        assert all(math.isfinite(v) for k, v in record.items()
                   if k.startswith('loss'))
    assert [r['isda_lambda'] for r in logged] == pytest.approx(
        [0.5 * i / len(logged) for i in range(len(logged))], abs=1e-4)

    # The statistics count exactly the sampled foreground RoIs per class.
    records = torch.load(tmp_path / 'roi_labels.pth')['roi_head.bbox_head']
    stats = torch.load(tmp_path / 'isda_rank0.pth')
    count = stats['roi_head.bbox_head.isda.estimator']['count']
    assert torch.equal(count, roi_counts(records, 'exclude'))
    assert count[:len(CLASSES)].gt(0).all() and count.sum() < sum(
        len(labels) for labels, _ in records)

    # The checkpoint loads into the stock config and predicts the same.
    init_default_scope('mmdet')
    cfg = Config.fromfile(CONFIGS / config)
    cfg.model.backbone.init_cfg = None
    isda_model = MODELS.build(cfg.model)
    stock_cfg = Config.fromfile(CONFIGS / config.replace('_isda-', '_'))
    stock_cfg.model.backbone.init_cfg = None
    stock_model = MODELS.build(stock_cfg.model)
    assert stock_model.roi_head.bbox_head.__class__.__name__ == (
        'Shared2FCBBoxHead')
    for model in (isda_model, stock_model):
        load_checkpoint(model, str(tmp_path / 'epoch_1.pth'))
    got, want = tensor_outputs(isda_model), tensor_outputs(stock_model)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_cascade_stages_keep_their_own_statistics(data, tmp_path):
    config = 'cascade_rcnn/cascade-mask-rcnn_r50_fpn_isda-1x_coco.py'
    logged = train(CONFIGS / config, data, tmp_path)
    for stage in range(3):
        assert all(math.isfinite(r[f's{stage}.loss_cls']) for r in logged)
        assert f's{stage}.isda_lambda' in logged[-1]
    records = torch.load(tmp_path / 'roi_labels.pth')
    stats = torch.load(tmp_path / 'isda_rank0.pth')
    counts = []
    for stage in range(3):
        name = f'roi_head.bbox_head.{stage}'
        count = stats[name + '.isda.estimator']['count']
        assert torch.equal(count, roi_counts(records[name], 'exclude'))
        counts.append(count)
    # Later stages resample at higher IoU thresholds: different RoIs.
    assert not torch.equal(counts[0], counts[2])


def test_lambda0_zero_reproduces_the_stock_loss():
    init_default_scope('mmdet')
    cfg = Config.fromfile(CONFIGS / 'faster_rcnn' /
                          'faster-rcnn_r50_fpn_isda-1x_coco.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.roi_head.bbox_head.lambda0 = 0.0
    isda_model = MODELS.build(cfg.model)
    cfg.model.roi_head.bbox_head = Config.fromfile(
        CONFIGS / 'faster_rcnn' / 'faster-rcnn_r50_fpn_1x_coco.py'
    ).model.roi_head.bbox_head
    stock_model = MODELS.build(cfg.model)
    stock_model.load_state_dict({
        k: v for k, v in isda_model.state_dict().items()
        if '.isda.' not in k})

    images = torch.randn(2, 3, SIZE, SIZE)
    samples = []
    for i in range(2):
        sample = DetDataSample(metainfo=META)
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[10., 10., 60., 70.], [50., 40., 120.,
                                                       100.]]) + i,
            labels=torch.tensor([0, 2]))
        samples.append(sample)
    losses = []
    for model in (isda_model, stock_model):
        model.train()
        torch.manual_seed(0)  # the same proposals and sampled RoIs
        losses.append(model.loss(images, samples))
    got, want = losses
    for key in ('loss_cls', 'loss_bbox', 'acc', 'loss_rpn_cls'):
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)

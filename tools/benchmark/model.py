"""Model rows: whole training iterations, baseline config against ISDA's.

Each row builds a config of this repository and its ISDA twin (the same
model with ISDA heads, sharing every other module with the baseline), puts
one batch of random images and labels in memory, and times full
``train_step`` iterations (data preprocessor, forward, losses, backward,
SGD step) of both, alternately, in a fresh process. The sizes are the
paper's networks at what a 2-core CPU can run: ResNet-50 at 224x224,
DeepLab-v3 R-50-D8 on 256x256 crops, Faster R-CNN R-50 FPN at 800x608, and
the CamVid Fast-SCNN of this repository.
"""
import os
from typing import List, NamedTuple

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from .measure import measure_alternating, spawn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class ModelRow(NamedTuple):
    """A baseline config, its ISDA twin, overrides and the batch."""
    name: str
    scope: str
    config: str
    isda_config: str
    options: dict
    images: int
    size: tuple
    classes: int


ROWS = (
    ModelRow('ResNet-50, ImageNet, 8 x 224x224', 'mmpretrain',
             'classification/imagenet/resnet50_8xb64-coslr-300e_in1k.py',
             'classification/imagenet/'
             'resnet50_8xb64-isda-coslr-300e_in1k.py', {}, 8, (224, 224),
             1000),
    # 256x256 crops: a 512x512 iteration takes 35-40 s on 2 cores, and the
    # overhead is a ratio of per-pixel costs, the same at any crop.
    ModelRow('DeepLab-v3 R-50-D8, Cityscapes, 2 x 256x256', 'mmseg',
             'segmentation/deeplabv3/'
             'deeplabv3_r101-d8_4xb2-40k_cityscapes-769x769.py',
             'segmentation/deeplabv3/'
             'deeplabv3_r101-d8_4xb2-isda-40k_cityscapes-769x769.py',
             {'model.backbone.depth': 50,
              'model.data_preprocessor.size': (256, 256)}, 2, (256, 256), 19),
    ModelRow('Faster R-CNN R-50 FPN, COCO, 1 x 800x608', 'mmdet',
             'detection/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
             'detection/faster_rcnn/faster-rcnn_r50_fpn_isda-1x_coco.py', {},
             1, (608, 800), 80),
    ModelRow('Fast-SCNN, CamVid, 8 x 160x160', 'mmseg',
             'segmentation/fast_scnn/fast_scnn_1xb8-3k_camvid-160x160.py',
             'segmentation/fast_scnn/'
             'fast_scnn_1xb8-isda-3k_camvid-160x160.py', {}, 8, (160, 160),
             11),
)


def build_model(row: ModelRow, config: str) -> torch.nn.Module:
    """The config's model in training mode, without pre-trained weights
    (nothing is downloaded) and with plain BatchNorm for one process."""
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', config))
    cfg.merge_from_dict(row.options)
    registry = __import__(f'{row.scope}.registry',
                          fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(row.scope):
        model = registry.build(cfg.model)
    return revert_sync_batchnorm(model).train()


def make_batch(row: ModelRow, seed: int = 0) -> dict:
    """Random uint8 images and labels, as a data loader would give them."""
    gen = torch.Generator().manual_seed(seed)
    h, w = row.size
    images = [
        torch.randint(256, (3, h, w), generator=gen, dtype=torch.uint8)
        for _ in range(row.images)
    ]
    meta = dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.))
    if row.scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        samples = [
            DataSample().set_gt_label(int(y))
            for y in torch.randint(row.classes, (row.images, ), generator=gen)
        ]
    elif row.scope == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        samples = []
        for _ in images:
            # Blocks of 32x32 pixels per class, a few of them ignored.
            label = torch.randint(row.classes + 1,
                                  (1, h // 32 + 1, w // 32 + 1), generator=gen)
            label[label == row.classes] = 255
            label = label.repeat_interleave(32, 1).repeat_interleave(32, 2)
            sample = SegDataSample(gt_sem_seg=PixelData(
                data=label[:, :h, :w].contiguous()))
            sample.set_metainfo(meta)
            samples.append(sample)
    else:
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        samples = []
        for _ in images:
            xy = torch.rand(8, 2, generator=gen) * torch.tensor([w, h]) / 2
            size = 40 + torch.rand(8, 2, generator=gen) * 200
            sample = DetDataSample(gt_instances=InstanceData(
                bboxes=torch.cat([xy, xy + size], 1),
                labels=torch.randint(row.classes, (8, ), generator=gen)))
            sample.set_metainfo(meta)
            samples.append(sample)
    return dict(inputs=images, data_samples=samples)


def build_models(row: ModelRow, seed: int = 0, device: str = 'cpu') -> tuple:
    """The baseline and the ISDA model, with the same weights, on
    ``device`` (their data preprocessors move each batch there).

    The ISDA model shares every part that holds no ISDA head (backbone,
    neck, data preprocessor...) with the baseline, the very modules: two
    copies of one network differ by a few percent in speed on a CPU
    (where their weights happen to lie in memory), more than ISDA adds.
    What differs between the two iterations is then only the heads.
    """
    torch.manual_seed(seed)
    stock = build_model(row, row.config)
    isda = build_model(row, row.isda_config)
    isda.load_state_dict({**isda.state_dict(), **stock.state_dict()})
    for name, child in isda.named_children():
        if not any(hasattr(m, 'isda') for m in child.modules()):
            setattr(isda, name, getattr(stock, name))
    return stock.to(device), isda.to(device)


def build_steps(row: ModelRow, seed: int = 0, device: str = 'cpu') -> dict:
    """A training iteration of the baseline and of the ISDA model."""
    batch = make_batch(row, seed)
    steps = {}
    for name, model in zip(('baseline', 'isda'),
                           build_models(row, seed, device)):
        wrapper = OptimWrapper(
            torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))
        steps[name] = (lambda m, o: lambda: m.train_step(batch, o))(model,
                                                                    wrapper)
    return steps


def worker(spec: dict) -> dict:
    """Time one row in this process."""
    steps = build_steps(ROWS[spec['row']], device=spec['device'])
    # Iterations of seconds: a few rounds after the warm-up are what the
    # 10-minute budget of the whole benchmark allows.
    return measure_alternating(steps, spec['device'], spec['repeats'],
                               budget_s=25.0, min_repeats=2)


def run(args) -> List[dict]:
    """Every row, each in a fresh process."""
    out = []
    for i, row in enumerate(ROWS):
        result = spawn(dict(mode='model', row=i, device=args.device,
                            repeats=args.repeats), args.threads)
        result['row'] = row.name
        out.append(result)
        print(f'[{i + 1}/{len(ROWS)}] {row.name}: baseline '
              f'{result["baseline"]["min_ms"]:.0f} ms, ISDA '
              f'{result["isda"]["min_ms"]:.0f} ms (best of '
              f'{result["isda"]["repeats"]}, {_overhead(result):+.1f}%)',
              flush=True)
    return out


def _overhead(result: dict) -> float:
    """ISDA's overhead in percent, best iteration against best iteration:
    with a few rounds of seconds-long iterations, interference on a shared
    machine (which only ever slows a step down) moves a median more than
    the minimum."""
    return 100 * (result['isda']['min_ms'] / result['baseline']['min_ms'] -
                  1)


def format_table(results: List[dict]) -> str:
    """Markdown: time per iteration and ISDA's overhead."""
    lines = ['| model | baseline ms / iter (best, median) | ISDA ms / iter '
             '(best, median) | overhead (best) | rounds |',
             '|---|---|---|---|---|']
    for r in results:
        b, i = r['baseline'], r['isda']
        lines.append(f'| {r["row"]} | {b["min_ms"]:.0f}, {b["ms"]:.0f} | '
                     f'{i["min_ms"]:.0f}, {i["ms"]:.0f} | '
                     f'{_overhead(r):+.1f}% | {b["repeats"]} |')
    return '\n'.join(lines)

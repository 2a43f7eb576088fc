"""Tiny data sets and child configs for the GPU check's training step, and
the summary of what the runs logged.

``python tools/gpu_check/training.py prepare WORK [--iters N]`` writes, under
``WORK``, a generated data set and a child config for one real ISDA config
of each toolkit (nothing is downloaded: the data are drawn here)::

    classification  ResNet-32, CIFAR-10 JPEG layout, full covariance
    segmentation    Fast-SCNN, CamVid layout, three ISDA heads
    detection       Mask R-CNN R-18 FPN, COCO layout, ISDA RoI bbox head

and prints one ``name<TAB>config`` line per config. Each trains ``N``
iterations with validation off.

``python tools/gpu_check/training.py summary WORK_DIR`` reads a run's
``scalars.json`` and checkpoint and prints one Markdown table row: the
iterations logged, first and last loss, the last lambda, the samples the
ISDA statistics hold, and whether every logged loss is finite (exit status
1 if not, or if the statistics are empty).
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')
NO_EVAL = """
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=10**6, save_last=True))
randomness = dict(seed=0)
"""
CLS = """_base_ = {base!r}
model = dict(head=dict(lambda_by='iter'))  # the base grows lambda by epoch
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r}, classes={root!r} + '/meta/classes.txt'))
train_cfg = dict(max_epochs=1, val_interval=10**6)
"""
SEG = """_base_ = {base!r}
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r}))
train_cfg = dict(max_iters={iters}, val_interval=10**6)
"""
DET = """_base_ = {base!r}
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r} + '/'))
train_cfg = dict(max_epochs=1, val_interval=10**6)
"""


def _write(path, image):
    import cv2
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, image):
        raise OSError(f'could not write {path}')


def classification(work, iters, rng):
    """CIFAR-10 JPEG layout: train/<class>/*.jpg, meta/{classes,train}.txt;
    each class a different mean brightness."""
    import numpy as np
    root, batch = osp.join(work, 'cifar10'), 16
    classes = [f'class{c}' for c in range(10)]
    lines = []
    for i in range(iters * batch):
        c = i % 10
        image = rng.normal(20 + 22 * c, 25, (32, 32, 3)).clip(0, 255)
        name = f'{classes[c]}/{i}.jpg'
        _write(osp.join(root, 'train', name), image.astype(np.uint8))
        lines.append(f'{name} {c}')
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    with open(osp.join(root, 'meta', 'classes.txt'), 'w') as f:
        f.write('\n'.join(classes) + '\n')
    with open(osp.join(root, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    base = osp.join(CONFIGS, 'classification', 'resnet_cifar',
                    'resnet32_1xb128-isda-160e_cifar10-jpg.py')
    return CLS.format(base=base, root=root, batch=batch)


def segmentation(work, iters, rng):
    """CamVid layout: img_dir/train/*.jpg, ann_dir/train/*.png; blocks of
    the 11 classes, a void (255) border."""
    import numpy as np
    root, batch = osp.join(work, 'camvid'), 4
    for i in range(2 * batch):
        label = rng.integers(0, 11, (12, 16)).astype(np.uint8)
        label = label.repeat(20, 0).repeat(20, 1)  # 240 x 320
        label[:8] = 255
        image = rng.normal(20 * (label[..., None] % 11), 20,
                           label.shape + (3, )).clip(0, 255)
        _write(osp.join(root, 'img_dir', 'train', f'{i}.jpg'),
               image.astype(np.uint8))
        _write(osp.join(root, 'ann_dir', 'train', f'{i}.png'), label)
    base = osp.join(CONFIGS, 'segmentation', 'fast_scnn',
                    'fast_scnn_1xb8-isda-3k_camvid-160x160.py')
    return SEG.format(base=base, root=root, batch=batch, iters=iters)


def detection(work, iters, rng):
    """COCO layout: train2017/*.jpg and annotations/instances_train2017.json
    with COCO's first three classes as bright rectangles (boxes and
    polygon masks) on dark noise."""
    import numpy as np
    root, batch, size = osp.join(work, 'coco'), 2, (320, 256)
    names = ('person', 'bicycle', 'car')
    images, annotations = [], []
    for i in range(iters * batch):
        image = rng.integers(0, 60, (size[1], size[0], 3)).astype(np.uint8)
        for label in range(3):
            w, h = (int(v) for v in rng.integers(40, 100, 2))
            x = int(rng.integers(0, size[0] - w))
            y = int(rng.integers(0, size[1] - h))
            image[y:y + h, x:x + w] = 70 * (label + 1)
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i + 1,
                category_id=label + 1, bbox=[x, y, w, h], area=w * h,
                iscrowd=0,
                segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
        _write(osp.join(root, 'train2017', f'{i}.jpg'), image)
        images.append(dict(id=i + 1, file_name=f'{i}.jpg', width=size[0],
                           height=size[1]))
    categories = [dict(id=k + 1, name=n) for k, n in enumerate(names)]
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    with open(osp.join(root, 'annotations', 'instances_train2017.json'),
              'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=categories), f)
    base = osp.join(CONFIGS, 'detection', 'mask_rcnn',
                    'mask-rcnn_r18_fpn_1xb2-isda-8e_coco-mini-512x320.py')
    return DET.format(base=base, root=root, batch=batch)


TOOLKITS = dict(classification=classification, segmentation=segmentation,
                detection=detection)


def prepare(work, iters):
    import numpy as np
    rng = np.random.default_rng(0)
    os.makedirs(work, exist_ok=True)
    for name, make in TOOLKITS.items():
        config = osp.join(work, f'{name}.py')
        with open(config, 'w') as f:
            f.write(make(work, iters, rng) + NO_EVAL)
        print(f'{name}\t{config}')


def summary(work_dir):
    """One Markdown row; False if a loss is not finite or the statistics
    are empty."""
    import torch
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    if not scalars:
        print('| no scalars.json | | | | | FAIL |')
        return False
    with open(scalars[0]) as f:
        logged = [json.loads(line) for line in f if line.strip()]
    losses = [r['loss'] for r in logged if 'loss' in r]
    lambdas = [v for k, v in logged[-1].items() if k.endswith('isda_lambda')]
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        state = torch.load(f.read().strip(), map_location='cpu',
                           weights_only=False)['state_dict']
    counts = {k[:-len('.count')]: int(v.sum()) for k, v in state.items()
              if k.endswith('isda.estimator.count')}
    finite = bool(losses) and all(
        math.isfinite(v) for r in logged for k, v in r.items()
        if 'loss' in k)
    ok = finite and bool(counts) and all(counts.values())
    held = ', '.join(f'{k.split(".isda")[0]} {v}' for k, v in counts.items())
    lam = ', '.join(f'{v:.3g}' for v in lambdas) or '—'
    first = f'{losses[0]:.4f}' if losses else '—'
    last = f'{losses[-1]:.4f}' if losses else '—'
    print(f'| {len(logged)} | {first} | {last} | {lam} | {held} | '
          f'{"ok" if ok else "FAIL"} |')
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('prepare', help='write data sets and configs')
    p.add_argument('work')
    p.add_argument('--iters', type=int, default=8,
                   help='training iterations per config (default: 8)')
    s = sub.add_parser('summary', help="one Markdown row of a run's logs")
    s.add_argument('work_dir')
    args = parser.parse_args(argv)
    if args.command == 'prepare':
        if args.iters < 1:
            parser.error('--iters must be at least 1')
        prepare(osp.abspath(args.work), args.iters)
        return 0
    return 0 if summary(args.work_dir) else 1


if __name__ == '__main__':
    sys.exit(main())

"""Head rows: a training step through real heads of the three toolkits.

For every row, one fresh process builds the stock head and its ISDA twin
with the same weights, makes one batch (features, labels at the toolkit's
resolution), and checks before timing that the comparison is fair: the twin
with ``lambda0=0`` gives the stock losses exactly, the twin logs the stock
accuracy, and its augmented logits are those of the ISDA core on the same
tensors. It then times, alternately, three steps on those tensors:

- ``stock``: the stock head's forward, loss and backward;
- ``isda``: the same through the ISDA twin;
- ``core``: the ISDA core alone (:meth:`isda_mm.core.ISDALoss.augment`,
  statistics update and augmented logits, and their backward), which is
  what ISDA cannot avoid: ``stock + core`` is the floor of the twin.
"""
import statistics
from typing import Callable, List, NamedTuple, Optional

import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from torch import Tensor

from isda_mm.core import ISDALoss

from .measure import (
    check_close,
    gemm_step,
    measure_alternating,
    paired_ratio,
    relative_error,
    spawn,
)

STEPS = ('stock', 'isda', 'core')
GEMM_SIZE = 2048


class HeadRow(NamedTuple):
    """A head (config without ``type``'s ``ISDA`` prefix) and its batch."""
    name: str
    scope: str
    head: dict
    batch: dict
    isda: dict


SEG_LOSS = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
ROWS = (
    HeadRow('LinearClsHead, ImageNet', 'mmpretrain',
            dict(type='LinearClsHead', num_classes=1000, in_channels=2048),
            dict(samples=64), dict(lambda0=7.5, covariance='diagonal')),
    HeadRow('LinearClsHead, CIFAR-100 WRN', 'mmpretrain',
            dict(type='LinearClsHead', num_classes=100, in_channels=640),
            dict(samples=128), dict(lambda0=0.5, covariance='full')),
    # Widths cut to 512 -> 128 (ASPP: 256 -> 64) channels: the zoo's
    # R-50/101 heads take 2048 -> 512, a minute a step on 2 cores. Crop,
    # stride and classes are Cityscapes'.
    HeadRow('FCNHead, Cityscapes 769', 'mmseg',
            dict(type='FCNHead', in_channels=512, channels=128, num_convs=1,
                 concat_input=False, num_classes=19, loss_decode=SEG_LOSS),
            dict(images=2, crop=769, strides=(8, )),
            dict(lambda0=7.5, covariance='diagonal')),
    HeadRow('ASPPHead, Cityscapes 769', 'mmseg',
            dict(type='ASPPHead', in_channels=256, channels=64,
                 dilations=(1, 12, 24, 36), num_classes=19,
                 loss_decode=SEG_LOSS),
            dict(images=2, crop=769, strides=(8, )),
            dict(lambda0=7.5, covariance='diagonal')),
    # MiT-B0's widths; the zoo's Cityscapes recipe: 1 image of 1024x1024.
    HeadRow('SegformerHead, Cityscapes 1024', 'mmseg',
            dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                 in_index=[0, 1, 2, 3], channels=256, num_classes=19,
                 loss_decode=SEG_LOSS),
            dict(images=1, crop=1024, strides=(4, 8, 16, 32),
                 channels=(32, 64, 160, 256)),
            dict(lambda0=7.5, covariance='diagonal')),
    HeadRow('Shared2FCBBoxHead, COCO', 'mmdet',
            dict(type='Shared2FCBBoxHead', in_channels=256,
                 fc_out_channels=1024, roi_feat_size=7, num_classes=80,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                 target_means=[0., 0., 0., 0.],
                                 target_stds=[0.1, 0.1, 0.2, 0.2]),
                 reg_class_agnostic=False,
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False,
                               loss_weight=1.0),
                 loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
            # 512 sampled RoIs per image (a quarter positive) x 2 images.
            dict(rois=1024, positive=0.25),
            dict(lambda0=0.5, covariance='diagonal')),
)


def _build(row: HeadRow, device: str = 'cpu', **isda) -> torch.nn.Module:
    registry = __import__(f'{row.scope}.registry',
                          fromlist=['MODELS']).MODELS
    cfg = dict(row.head, **isda)
    if isda:
        cfg['type'] = 'ISDA' + cfg['type']
    with DefaultScope.overwrite_default_scope(row.scope):
        return registry.build(cfg).to(device)


class Batch(NamedTuple):
    """One batch for a head, and where its classifier sees it."""
    loss: Callable  # head -> its dict of losses
    leaves: List[Tensor]  # inputs that receive gradients
    classifier: Callable  # head -> its final linear layer
    labels: Callable  # (head, logits) -> the labels ISDA sees
    ignore_index: Optional[int]


def make_batch(row: HeadRow, seed: int = 0, device: str = 'cpu') -> Batch:
    """Random features and labels for the row's head, drawn from ``seed``
    (on the CPU, the same on every device) and moved to ``device``."""
    gen = torch.Generator().manual_seed(seed)
    b = row.batch

    def leaf(*shape):
        return torch.randn(*shape, generator=gen).to(device).requires_grad_()

    if row.scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        c, a = row.head['num_classes'], row.head['in_channels']
        feats = leaf(b['samples'], a)
        labels = torch.randint(c, (b['samples'], ), generator=gen)
        samples = [DataSample().set_gt_label(y).to(device)
                   for y in labels.tolist()]
        labels = labels.to(device)
        return Batch(lambda h: h.loss((feats, ), samples), [feats],
                     lambda h: h.fc, lambda h, z: labels, None)
    if row.scope == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        crop, c = b['crop'], row.head['num_classes']
        widths = b.get('channels', (row.head['in_channels'], ))
        feats = [
            leaf(b['images'], w, -(-crop // s), -(-crop // s))
            for w, s in zip(widths, b['strides'])
        ]
        labels = torch.randint(c, (b['images'], 1, crop, crop), generator=gen)
        labels[..., :crop // 10] = 255  # ignored pixels, as in real labels
        samples = []
        for label in labels.to(device):
            sample = SegDataSample(gt_sem_seg=PixelData(data=label))
            sample.set_metainfo(dict(img_shape=(crop, crop),
                                     pad_shape=(crop, crop)))
            samples.append(sample)

        def small_labels(head, logits):
            full = head._stack_batch_gt(samples).float()
            return F.interpolate(full, size=logits.shape[2:],
                                 mode='nearest')[:, 0].long()

        return Batch(lambda h: h.loss(tuple(feats), samples, None), feats,
                     lambda h: h.conv_seg, small_labels, 255)
    n, c = b['rois'], row.head['num_classes']
    x = leaf(n, row.head['in_channels'], 7, 7)
    xy = torch.rand(n, 2, generator=gen) * 600
    rois = torch.cat([torch.zeros(n, 1), xy, xy + 50], 1).to(device)
    labels = torch.full((n, ), c)
    positive = int(n * b['positive'])
    labels[:positive] = torch.randint(c, (positive, ), generator=gen)
    labels = labels.to(device)
    weights = torch.ones(n, device=device)
    targets = (torch.randn(n, 4, generator=gen) * 0.1).to(device)
    box_weights = (labels < c).float()[:, None].expand(n, 4).contiguous()

    def loss(head):
        cls_score, bbox_pred = head(x)
        return head.loss(cls_score, bbox_pred, rois, labels, weights,
                         targets, box_weights)

    # Background excluded, as the twin does by default.
    return Batch(loss, [x], lambda h: h.fc_cls,
                 lambda h, z: torch.where(labels < c, labels, -1), -1)


def _classifier_io(head, batch: Batch):
    """Input and output of the head's final linear layer on this batch."""
    seen = {}
    handle = batch.classifier(head).register_forward_hook(
        lambda m, a, o: seen.update(features=a[0], logits=o))
    try:
        batch.loss(head)
    finally:
        handle.remove()
    return seen['features'].detach(), seen['logits'].detach()


def build_steps(row: HeadRow, seed: int = 0, device: str = 'cpu'):
    """The three steps of the row on one batch on ``device``, after the
    fairness check.

    Returns:
        tuple: The steps by name (:data:`STEPS`), and the number of classes
        in the batch, C, A and whether the covariance is full.

    Raises:
        BenchmarkError: The twin is not the stock head plus ISDA.
    """
    batch = make_batch(row, seed, device)
    stock = _build(row, device)
    twin = _build(row, device, **row.isda)
    twin.load_state_dict({**twin.state_dict(), **stock.state_dict()})
    zero = _build(row, device, **dict(row.isda, lambda0=0.0))
    zero.load_state_dict(twin.state_dict())
    check = {}
    for name, head in (('stock', stock), ('zero', zero), ('isda', twin)):
        torch.manual_seed(seed)  # the same dropout masks
        check[name] = {k: v.detach() for k, v in batch.loss(head).items()}
    errors = {
        f'lambda0=0 {k}': relative_error(check['zero'][k], v)
        for k, v in check['stock'].items()
    }
    errors.update({
        f'accuracy {k}': relative_error(check['isda'][k], v)
        for k, v in check['stock'].items() if 'acc' in k
    })

    # The core on the classifier's own tensors, checked against the twin
    # (with the same dropout mask).
    torch.manual_seed(seed)
    features, logits = _classifier_io(stock, batch)
    weight = batch.classifier(stock).weight.detach().flatten(1)
    labels = batch.labels(stock, logits)
    est = twin.isda.estimator
    want = ISDALoss(est.num_classes, est.feature_dim, est.covariance_kind,
                    batch.ignore_index).to(device).augment(
                        features, logits, labels, weight,
                        row.isda['lambda0'])
    probe = _build(row, device, **row.isda)
    probe.load_state_dict({**probe.state_dict(), **stock.state_dict()})
    got, augment = [], probe.isda.augment

    def recorded(*args):
        got.append(augment(*args))
        return got[-1]

    probe.isda.augment = recorded
    torch.manual_seed(seed)
    batch.loss(probe)
    errors['augmented logits'] = relative_error(got[0], want)
    check_close(row.name, errors, 1e-5)

    core = ISDALoss(est.num_classes, est.feature_dim, est.covariance_kind,
                    batch.ignore_index).to(device)
    logits = logits.clone().requires_grad_()
    weight = weight.clone().requires_grad_()
    upstream = torch.randn(logits.shape, device=device)

    def step(head):
        def run():
            head.zero_grad()
            for leaf in batch.leaves:
                leaf.grad = None
            losses = batch.loss(head)
            sum(v for k, v in losses.items() if 'loss' in k).backward()
        return run

    def core_step():
        logits.grad = weight.grad = None
        core.augment(features, logits, labels, weight,
                     row.isda['lambda0']).backward(upstream)

    present = labels[(labels >= 0) & (labels < est.num_classes)].unique()
    info = dict(classes=len(present), num_classes=est.num_classes,
                dim=est.feature_dim, full=est.covariance_kind == 'full')
    return dict(stock=step(stock), isda=step(twin), core=core_step), info


def worker(spec: dict) -> List[dict]:
    """Time the rows of one toolkit in this process."""
    out = []
    for i in spec['rows']:
        steps, info = build_steps(ROWS[i], device=spec['device'])
        if info['full']:  # the GEMM rate, timed in the same rounds
            steps['gemm'] = gemm_step(spec['device'], GEMM_SIZE)
        result = measure_alternating(steps, spec['device'], spec['repeats'])
        if info['full']:
            flops = 2 * info['classes'] * info['num_classes'] * info['dim']**2
            result['gemm'].update(classes=info['classes'], flops=flops,
                                  size=GEMM_SIZE)
        out.append(result)
    return out


def run(args) -> List[dict]:
    """The rows, in one fresh process per toolkit (importing isda_mm with
    the three toolkits takes about 12 s on 2 cores)."""
    out = []
    for scope in dict.fromkeys(row.scope for row in ROWS):
        rows = [i for i, row in enumerate(ROWS) if row.scope == scope]
        results = spawn(dict(mode='heads', rows=rows, device=args.device,
                             repeats=args.repeats), args.threads)
        for i, result in zip(rows, results):
            result['row'] = ROWS[i].name
            out.append(result)
            print(f'[{i + 1}/{len(ROWS)}] {ROWS[i].name}: ' + ', '.join(
                f'{k} {result[k]["ms"]:.1f} ms' for k in STEPS), flush=True)
    return out


def format_table(results: List[dict]) -> str:
    """Markdown: each step's median time, and the ratios as medians over
    rounds of the steps timed together."""
    cols = ('head', 'stock ms', 'ISDA twin ms', 'core ms', 'ISDA / stock',
            'floor (stock + core) / stock', 'ISDA / floor',
            'core / GEMM floor')
    lines = ['| ' + ' | '.join(cols) + ' |',
             '|' + '|'.join('---' for _ in cols) + '|']
    for r in results:
        rounds = list(zip(*(r[k]['times'] for k in STEPS)))
        floor = statistics.median((s + c) / s for s, _, c in rounds)
        to_floor = statistics.median(i / (s + c) for s, i, c in rounds)
        gemm = '—'
        if 'gemm' in r:
            g = r['gemm']
            size = 2 * g['size']**3
            # The floor of a round: K C A^2 flops at that round's GEMM rate.
            to_gemm = statistics.median(
                c / (g['flops'] * t / size)
                for c, t in zip(r['core']['times'], g['times']))
            gflops = size / statistics.median(g['times']) / 1e6
            gemm = (f'{to_gemm:.2f}x (K={g["classes"]}, {gflops:.0f} '
                    'GFLOP/s)')
        lines.append(
            f'| {r["row"]} | ' +
            ' | '.join(f'{r[k]["ms"]:.1f}' for k in STEPS) +
            f' | {paired_ratio(r, "isda", "stock"):.2f}x | {floor:.2f}x | '
            f'{to_floor:.2f}x | {gemm} |')
    return '\n'.join(lines)

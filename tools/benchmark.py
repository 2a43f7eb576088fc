"""Time one ISDA training step: ``isda_mm`` against the dense algorithm.

One step is what a head does per training iteration: the classifier forward
(``logits = W a + b``), the update of the class statistics with the batch,
the augmented cross-entropy and the backward pass to the classifier (the
gradient reaches ``W`` through the logits and through the ISDA term). Two
implementations run on the same inputs, with the same seeds:

- ``isda_mm``: :class:`isda_mm.core.ISDALoss` (estimator update, then
  :func:`isda_mm.core.isda_augment`, then cross-entropy).
- ``dense``: the dense algorithm of the released ISDA implementation,
  written here from its description (:class:`DenseISDA`): N x C x A one-hot
  tensors and a C N A^2 product in the update, N x A x A gathered
  covariances and an N x C x C product of which only the diagonal is kept in
  the augmentation.

For every shape a correctness check runs first: both must give the same
loss, weight gradient and updated statistics, or the run aborts. Then each
(shape, implementation) runs in a fresh subprocess, which reports the median
wall time of several steps after a warm-up and the peak memory the steps
add: resident set size on the CPU (the kernel's high-water mark, reset right
before the first step), ``torch.cuda.max_memory_allocated`` on a GPU.

Run from the repository root::

    python tools/benchmark.py                  # CPU, the three shapes
    python tools/benchmark.py --device cuda    # on a GPU
    python tools/benchmark.py --head           # through a real mmseg head
    python tools/benchmark.py --shapes cifar100-wrn --repeats 5 \\
        --output benchmark.md

``--shapes`` also takes custom rows written ``NxCxA:full`` or
``NxCxA:diagonal`` (e.g. ``16x5x8:full``).
"""
import argparse
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:
    from isda_mm.core import ISDALoss
except ImportError:  # a checkout without ``pip install -e .``
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from isda_mm.core import ISDALoss

IMPLS = ('dense', 'isda_mm')
RESULT_TAG = 'BENCHMARK_RESULT '


class Shape(NamedTuple):
    """One benchmark row: N samples of C classes with A-dim features."""
    name: str
    num_samples: int
    num_classes: int
    feature_dim: int
    covariance: str


SHAPES = (
    Shape('cifar100-wrn', 128, 100, 640, 'full'),
    Shape('imagenet-r50', 64, 1000, 2048, 'diagonal'),
    Shape('seg-pixels', 2 * 65 * 65, 19, 512, 'diagonal'),
)


class BenchmarkError(RuntimeError):
    """A worker failed, or the two implementations disagree."""


# --------------------------------------------------------------------------
# The dense algorithm of the released implementation
# --------------------------------------------------------------------------


@torch.no_grad()
def dense_batch_statistics(features: Tensor, labels: Tensor,
                           num_classes: int, full: bool):
    """Per-class count, mean and biased covariance by one-hot tensors.

    Every class gets a slot in an ``(N, C, A)`` tensor whether or not it is
    present, and the full covariance is one ``bmm`` over all classes: the
    work is ``C N A^2`` (full) or ``C N A`` (diagonal).

    Args:
        features (Tensor): ``(N, A)`` features.
        labels (Tensor): ``(N,)`` labels in ``[0, C)``.
        num_classes (int): C.
        full (bool): Full ``(C, A, A)`` covariances, else ``(C, A)``
            variances.

    Returns:
        tuple[Tensor, Tensor, Tensor]: count ``(C,)`` (float), mean
        ``(C, A)`` and covariance of the batch; zeros for absent classes.
    """
    n, a = features.shape
    c = num_classes
    onehot = F.one_hot(labels, c).to(features.dtype)  # (N, C)
    mask = onehot[:, :, None].expand(n, c, a)  # (N, C, A)
    by_class = features[:, None, :].expand(n, c, a) * mask
    amount = mask.sum(0).clamp(min=1)  # (C, A)
    mean = by_class.sum(0) / amount
    centred = by_class - mean[None] * mask  # (N, C, A)
    if full:
        cov = torch.bmm(centred.permute(1, 2, 0), centred.permute(
            1, 0, 2)) / amount[:, :, None]
    else:
        cov = centred.square().sum(0) / amount
    return onehot.sum(0), mean, cov


def dense_augment(logits: Tensor, labels: Tensor, weight: Tensor,
                  covariance: Tensor, ratio: float) -> Tensor:
    """Augmented logits computed sample by sample, as the released code.

    ``D = W - w_y`` is built for every sample, ``(N, C, A)``. Full:
    ``sigma2 = diag(D S_y D^T)`` with ``S_y`` gathered per sample
    ``(N, A, A)`` and the ``(N, C, C)`` product formed in full. Diagonal:
    ``sigma2 = sum_a D^2 s_y``.

    Args:
        logits (Tensor): ``(N, C)``.
        labels (Tensor): ``(N,)``.
        weight (Tensor): ``(C, A)`` classifier weight.
        covariance (Tensor): ``(C, A, A)`` or ``(C, A)``, a constant.
        ratio (float): lambda.

    Returns:
        Tensor: ``logits + 0.5 * ratio * sigma2``.
    """
    n, c = logits.shape
    a = weight.shape[1]
    w_all = weight[None].expand(n, c, a)
    w_y = torch.gather(w_all, 1, labels[:, None, None].expand(n, c, a))
    diff = w_all - w_y  # (N, C, A)
    cov_y = covariance.detach()[labels]  # (N, A, A) or (N, A)
    if covariance.dim() == 3:
        sigma2 = torch.bmm(torch.bmm(diff, cov_y), diff.transpose(1, 2))
        sigma2 = torch.diagonal(sigma2, dim1=1, dim2=2)
    else:
        sigma2 = (diff.square() * cov_y[:, None, :]).sum(2)
    return logits + 0.5 * ratio * sigma2


class DenseISDA:
    """Running class statistics and ISDA loss of the dense algorithm.

    The statistics are plain tensors; the count is float, as the released
    code kept it. For ``m`` batch samples of a class seen ``n`` times,
    ``w = m / (n + m)`` (0 for classes absent from the batch)::

        mean <- (1 - w) mean + w mean_b
        cov  <- (1 - w) cov + w cov_b + w (1 - w) (mean - mean_b)(...)^T

    Args:
        num_classes (int): C.
        feature_dim (int): A.
        covariance (str): ``'full'`` or ``'diagonal'``. Defaults to
            ``'full'``.
        device (torch.device | str, optional): Where the statistics live.
    """

    def __init__(self,
                 num_classes: int,
                 feature_dim: int,
                 covariance: str = 'full',
                 device=None) -> None:
        if covariance not in ('full', 'diagonal'):
            raise ValueError(f'covariance must be full or diagonal, '
                             f'got {covariance!r}')
        self.num_classes = num_classes
        self.full = covariance == 'full'
        shape = (num_classes, feature_dim) + (
            (feature_dim, ) if self.full else ())
        self.mean = torch.zeros(num_classes, feature_dim, device=device)
        self.covariance = torch.zeros(shape, device=device)
        self.count = torch.zeros(num_classes, device=device)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        """Merge one batch into the statistics of all C classes.

        Args:
            features (Tensor): ``(N, A)`` features (detached here).
            labels (Tensor): ``(N,)`` labels in ``[0, C)``.
        """
        features = features.detach().to(self.mean.dtype)
        m, mean_b, cov_b = dense_batch_statistics(features, labels,
                                                  self.num_classes, self.full)
        w = m / (self.count + m).clamp(min=1)  # (C,)
        d = self.mean - mean_b
        if self.full:
            w_cov = w[:, None, None]
            spread = torch.bmm(d[:, :, None], d[:, None, :])
        else:
            w_cov = w[:, None]
            spread = d.square()
        self.covariance = (self.covariance * (1 - w_cov) + cov_b * w_cov +
                           w_cov * (1 - w_cov) * spread)
        self.mean = self.mean * (1 - w[:, None]) + mean_b * w[:, None]
        self.count = self.count + m

    def augment(self, logits: Tensor, labels: Tensor, weight: Tensor,
                ratio: float) -> Tensor:
        """Augmented logits with the current statistics."""
        return dense_augment(logits, labels, weight, self.covariance, ratio)

    def loss(self, features: Tensor, logits: Tensor, labels: Tensor,
             weight: Tensor, ratio: float) -> Tensor:
        """Update with the batch, then mean cross-entropy of the augmented
        logits (the order of :meth:`isda_mm.core.ISDALoss.forward`).

        Args:
            features (Tensor): ``(N, A)`` inputs of the classifier.
            logits (Tensor): ``(N, C)`` its outputs.
            labels (Tensor): ``(N,)``.
            weight (Tensor): ``(C, A)`` its weight.
            ratio (float): lambda.

        Returns:
            Tensor: The scalar loss.
        """
        self.update(features, labels)
        return F.cross_entropy(
            self.augment(logits, labels, weight, ratio), labels)


# --------------------------------------------------------------------------
# Inputs and one step
# --------------------------------------------------------------------------


class Inputs(NamedTuple):
    """What both implementations see: one classifier and some batches."""
    linear: nn.Linear
    warmup: List[tuple]
    features: Tensor
    labels: Tensor


def make_inputs(shape: Shape,
                device: str,
                seed: int = 0,
                warmup_batches: int = 3) -> Inputs:
    """Random classifier, pre-warm batches and the batch of the step.

    Everything is drawn on the CPU from ``seed``, so every process (and every
    device) gets the same numbers. Features are a class centre plus unit
    noise, so the statistics are neither zero nor trivial.

    Args:
        shape (Shape): The row.
        device (str): Where to put the tensors.
        seed (int): Seed. Defaults to 0.
        warmup_batches (int): Batches that pre-warm the statistics.
            Defaults to 3.

    Returns:
        Inputs: The classifier and ``(features, labels)`` batches.
    """
    n, c, a = shape.num_samples, shape.num_classes, shape.feature_dim
    torch.manual_seed(seed)
    linear = nn.Linear(a, c)
    gen = torch.Generator().manual_seed(seed + 1)
    centres = torch.randn(c, a, generator=gen)
    batches = []
    for _ in range(warmup_batches + 1):
        labels = torch.randint(c, (n, ), generator=gen)
        features = torch.randn(n, a, generator=gen) + centres[labels]
        batches.append((features.to(device), labels.to(device)))
    features, labels = batches.pop()
    return Inputs(linear.to(device), batches, features, labels)


def build_step(impl: str, shape: Shape, inputs: Inputs,
               ratio: float) -> tuple:
    """Pre-warmed statistics and a closure running one training step.

    Args:
        impl (str): ``'dense'`` or ``'isda_mm'``.
        shape (Shape): The row.
        inputs (Inputs): From :func:`make_inputs`.
        ratio (float): lambda.

    Returns:
        tuple: ``(state, step)``: the :class:`DenseISDA` or the
        :class:`~isda_mm.core.ISDALoss`, and a function that clears the
        gradients, runs forward, loss and backward, and returns the loss.
    """
    c, a = shape.num_classes, shape.feature_dim
    device = inputs.features.device
    if impl == 'dense':
        state = DenseISDA(c, a, shape.covariance, device=device)
        update, loss_fn = state.update, state.loss
    elif impl == 'isda_mm':
        state = ISDALoss(c, a, shape.covariance).to(device)
        update, loss_fn = state.estimator.update, state
    else:
        raise ValueError(f'unknown implementation {impl!r}')
    for features, labels in inputs.warmup:
        update(features, labels)
    linear, features, labels = inputs.linear, inputs.features, inputs.labels

    def step() -> Tensor:
        linear.weight.grad = None
        linear.bias.grad = None
        loss = loss_fn(features, linear(features), labels, linear.weight,
                       ratio)
        loss.backward()
        return loss

    return state, step


def _statistics(state) -> Dict[str, Tensor]:
    if isinstance(state, DenseISDA):
        return dict(
            mean=state.mean, covariance=state.covariance, count=state.count)
    est = state.estimator
    return dict(mean=est.mean, covariance=est.covariance, count=est.count)


def _relative_error(got: Tensor, want: Tensor) -> float:
    """``max |got - want|`` over ``max |want|``."""
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    scale = want.abs().max().item()
    return (got - want).abs().max().item() / max(scale, 1e-30)


def check_agreement(shape: Shape,
                    device: str,
                    ratio: float,
                    rtol: float = 1e-4,
                    seed: int = 0) -> Dict[str, float]:
    """Run one step of each implementation and compare the results.

    Args:
        shape (Shape): The row.
        device (str): ``'cpu'`` or ``'cuda'``.
        ratio (float): lambda.
        rtol (float): Largest error allowed, relative to the magnitude of
            each compared quantity. Defaults to 1e-4.
        seed (int): Seed of the inputs. Defaults to 0.

    Returns:
        dict: The relative error of the loss, the weight gradient, the mean
        and the covariance (the counts must be equal).

    Raises:
        BenchmarkError: If any error exceeds ``rtol`` or the counts differ.
    """
    out = {}
    for impl in IMPLS:
        inputs = make_inputs(shape, device, seed)
        state, step = build_step(impl, shape, inputs, ratio)
        loss = step()
        out[impl] = dict(
            loss=loss.detach(),
            weight_grad=inputs.linear.weight.grad.detach().clone(),
            **_statistics(state))
        del state, step, inputs
        gc.collect()
    dense, fast = out['dense'], out['isda_mm']
    if not torch.equal(dense['count'].long(), fast['count'].long()):
        raise BenchmarkError(f'{shape.name}: the class counts differ')
    errors = {
        key: _relative_error(fast[key], dense[key])
        for key in ('loss', 'weight_grad', 'mean', 'covariance')
    }
    bad = {k: v for k, v in errors.items() if not v <= rtol}
    if bad:
        raise BenchmarkError(
            f'{shape.name}: dense and isda_mm disagree beyond rtol={rtol:g}: '
            + ', '.join(f'{k} {v:.2e}' for k, v in bad.items()) +
            '; the comparison would not be fair')
    return errors


# --------------------------------------------------------------------------
# Timing and memory (in a worker process)
# --------------------------------------------------------------------------


def _current_rss() -> int:
    """Resident set size now, in bytes (``/proc/self/statm``)."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE')


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (``VmHWM``) if allowed.

    ``ru_maxrss`` alone cannot be reset and starts, in a child, at the
    parent's peak, so it would hide the step's own peak.
    """
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss(reset_ok: bool) -> int:
    """Peak RSS in bytes: ``VmHWM`` after a reset, else ``ru_maxrss``."""
    if reset_ok:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def time_steps(impl: str,
               shape: Shape,
               device: str,
               ratio: float,
               repeats: Optional[int] = None,
               warmup: int = 1,
               budget_s: float = 6.0,
               seed: int = 0) -> Dict[str, float]:
    """Median step time and peak memory of one implementation.

    Meant to run in a fresh process (see :func:`main`), so that the memory
    reading is the step's alone.

    Args:
        impl (str): ``'dense'`` or ``'isda_mm'``.
        shape (Shape): The row.
        device (str): ``'cpu'`` or ``'cuda'``.
        ratio (float): lambda.
        repeats (int, optional): Timed steps. None: as many as fit in
            ``budget_s`` after the warm-up, between 3 and 50.
        warmup (int): Untimed steps first. Defaults to 1.
        budget_s (float): Time for the timed steps when ``repeats`` is None.
            Defaults to 6.
        seed (int): Seed of the inputs. Defaults to 0.

    Returns:
        dict: ``ms`` (median), ``min_ms``, ``repeats``, ``peak_mb`` (peak
        memory added by the steps, MiB).
    """
    inputs = make_inputs(shape, device, seed)
    state, step = build_step(impl, shape, inputs, ratio)
    return measure(step, device, repeats, warmup, budget_s)


def measure(step,
            device: str,
            repeats: Optional[int] = None,
            warmup: int = 1,
            budget_s: float = 6.0) -> Dict[str, float]:
    """Median time and peak added memory of ``step()`` (arguments as in
    :func:`time_steps`)."""
    cuda = device.startswith('cuda')

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    gc.collect()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _current_rss()
        reset_ok = _reset_peak_rss()
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        step()
    sync()
    first = (time.perf_counter() - start) / max(warmup, 1)
    if repeats is None:
        repeats = int(min(50, max(3, budget_s // max(first, 1e-6))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    if cuda:
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = _peak_rss(reset_ok) - base
    return dict(
        ms=statistics.median(times) * 1e3,
        min_ms=min(times) * 1e3,
        repeats=repeats,
        peak_mb=max(peak, 0) / 2**20)


# --------------------------------------------------------------------------
# Through a real segmentation head
# --------------------------------------------------------------------------

HEAD_IMPLS = ('stock', 'dense', 'isda_mm')
# A 2 x 512 x 1024 crop seen at 1/8 resolution by a head whose conv_seg
# takes A = 512 channels, Cityscapes' 19 classes (issue 6).
HEAD_ROW = dict(batch=2, height=64, width=128, stride=8, channels=512,
                classes=19)


def build_head_step(impl: str,
                    device: str,
                    ratio: float,
                    seed: int = 0,
                    row: Optional[dict] = None):
    """An mmseg ``FCNHead`` training step (forward, ``loss``, backward to
    the features) on one batch, with its labels at full resolution.

    ``stock`` is ``FCNHead``; ``isda_mm`` is ``ISDAFCNHead``; ``dense`` is
    ``ISDAFCNHead`` whose statistics and augmented logits come from the
    dense algorithm on the non-ignored pixels. ``num_convs=0`` leaves
    ``conv_seg`` as the head's only layer, so the ISDA part is what differs.
    ``row`` overrides :data:`HEAD_ROW` (tests use a small one).

    Returns:
        tuple: ``(head, step)``; ``step()`` returns the total loss.
    """
    from mmengine.structures import PixelData
    from mmseg.models.decode_heads import FCNHead
    from mmseg.structures import SegDataSample

    from isda_mm.segmentation.heads import ISDAFCNHead  # noqa: F401

    r = row or HEAD_ROW
    args = dict(in_channels=r['channels'], channels=r['channels'],
                num_convs=0, concat_input=False, num_classes=r['classes'],
                dropout_ratio=0.0)
    torch.manual_seed(seed)
    if impl == 'stock':
        head = FCNHead(**args)
    elif impl in ('dense', 'isda_mm'):
        cls = ISDAFCNHead if impl == 'isda_mm' else _dense_head_class()
        head = cls(lambda0=ratio, covariance='diagonal', **args)
    else:
        raise ValueError(f'unknown implementation {impl!r}')
    head = head.to(device)
    gen = torch.Generator().manual_seed(seed + 1)
    b, h, w, s = r['batch'], r['height'], r['width'], r['stride']
    features = torch.randn(b, r['channels'], h, w, generator=gen)
    features = features.to(device).requires_grad_()
    labels = torch.randint(r['classes'], (b, 1, h * s, w * s), generator=gen)
    labels[..., :, :w * s // 10] = 255  # ignored pixels, as in real labels
    samples = []
    for label in labels.to(device):
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(h * s, w * s),
                                 pad_shape=(h * s, w * s)))
        samples.append(sample)

    def step() -> Tensor:
        head.zero_grad()
        features.grad = None
        losses = head.loss((features, ), samples, None)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        loss.backward()
        return loss

    return head, step


def _dense_head_class():
    """``ISDAFCNHead`` with the dense algorithm in place of the core."""
    from isda_mm.segmentation.heads import ISDAFCNHead

    class DenseFCNHead(ISDAFCNHead):

        def isda_augment(self, features, logits, labels, weight):
            if not hasattr(self, 'dense'):
                self.dense = DenseISDA(*self.isda.estimator.mean.shape,
                                       'diagonal', device=features.device)
            self._isda_ratio = self.lambda0
            keep = labels != self.ignore_index
            self.dense.update(features[keep], labels[keep])
            out = logits.clone()
            out[keep] = self.dense.augment(logits[keep], labels[keep],
                                           weight, self.lambda0)
            return out

    return DenseFCNHead


def check_head_agreement(device: str,
                         ratio: float,
                         rtol: float = 1e-4,
                         row: Optional[dict] = None) -> Dict[str, float]:
    """``dense`` and ``isda_mm`` heads give the same loss and classifier
    gradient (relative errors), or :class:`BenchmarkError`."""
    out = {}
    for impl in ('dense', 'isda_mm'):
        head, step = build_head_step(impl, device, ratio, row=row)
        loss = step()
        out[impl] = dict(loss=loss.detach(),
                         weight_grad=head.conv_seg.weight.grad.clone())
    errors = {
        key: _relative_error(out['isda_mm'][key], out['dense'][key])
        for key in ('loss', 'weight_grad')
    }
    bad = {k: v for k, v in errors.items() if not v <= rtol}
    if bad:
        raise BenchmarkError(
            'head: dense and isda_mm disagree beyond '
            f'rtol={rtol:g}: ' + ', '.join(f'{k} {v:.2e}'
                                           for k, v in bad.items()))
    return errors


def format_head_table(header: str, result: dict) -> str:
    """Markdown table of the head row: each implementation's time and
    memory, ISDA's overhead over the stock head and speed-up over dense."""
    r = HEAD_ROW
    pixels = r['batch'] * r['height'] * r['width']
    stock = result['stock']
    lines = [
        header, '',
        f'FCNHead step (forward, loss on {r["height"] * r["stride"]}x'
        f'{r["width"] * r["stride"]} labels, backward) on '
        f'{r["batch"]}x{r["channels"]}x{r["height"]}x{r["width"]} features '
        f'({pixels} pixels, C={r["classes"]}, A={r["channels"]}, diagonal)',
        '', '| head | ms | peak MB | time vs stock | time vs isda_mm |',
        '|---|---|---|---|---|'
    ]
    for impl in HEAD_IMPLS:
        m = result[impl]
        lines.append(
            f'| {impl} | {m["ms"]:.1f} | {m["peak_mb"]:.0f} | '
            f'{m["ms"] / stock["ms"]:.2f}x | '
            f'{m["ms"] / result["isda_mm"]["ms"]:.2f}x |')
    return '\n'.join(lines)



# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def parse_shape(text: str) -> Shape:
    """A row by name (``cifar100-wrn``) or as ``NxCxA:full|diagonal``."""
    for shape in SHAPES:
        if shape.name == text:
            return shape
    try:
        dims, kind = text.split(':')
        n, c, a = (int(x) for x in dims.lower().split('x'))
    except ValueError:
        kind = None
    if kind not in ('full', 'diagonal') or min(n, c, a) < 1:
        names = ', '.join(s.name for s in SHAPES)
        raise argparse.ArgumentTypeError(
            f'unknown shape {text!r}: use one of {names} or NxCxA:full / '
            'NxCxA:diagonal')
    return Shape(text, n, c, a, kind)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Time one ISDA step (statistics update, augmented '
        'cross-entropy, backward): isda_mm against the dense algorithm.')
    parser.add_argument(
        '--device', choices=('cpu', 'cuda'), default='cpu',
        help='where to run (default: cpu)')
    parser.add_argument(
        '--repeats', type=int, default=None,
        help='timed steps per implementation and shape (default: as many '
        'as fit in a few seconds, at least 3)')
    parser.add_argument(
        '--warmup', type=int, default=1,
        help='untimed steps before timing (default: 1)')
    parser.add_argument(
        '--shapes', nargs='+', type=parse_shape, default=list(SHAPES),
        metavar='SHAPE',
        help='rows to run: ' + ', '.join(s.name for s in SHAPES) +
        ' or NxCxA:full|diagonal (default: the three named rows)')
    parser.add_argument(
        '--ratio', type=float, default=0.5, help='lambda (default: 0.5)')
    parser.add_argument(
        '--threads', type=int, default=None,
        help='torch CPU threads (default: as torch chooses)')
    parser.add_argument(
        '--rtol', type=float, default=1e-4,
        help='tolerance of the correctness check, relative to the '
        'magnitude of each quantity (default: 1e-4)')
    parser.add_argument(
        '--head', action='store_true',
        help='instead of the rows, time a training step of a real mmseg '
        'FCNHead on a 2x512x1024 crop at 1/8 (stock, dense, isda_mm)')
    parser.add_argument(
        '--output', help='also write the table as Markdown to this file')
    parser.add_argument('--worker', choices=('check', 'time'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--impl', choices=IMPLS + HEAD_IMPLS,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error('--repeats must be at least 1')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no CUDA device')
    return args


def _worker(args: argparse.Namespace) -> dict:
    if args.head and args.worker == 'check':
        return check_head_agreement(args.device, args.ratio, args.rtol)
    if args.head:
        head, step = build_head_step(args.impl, args.device, args.ratio)
        return measure(step, args.device, args.repeats, args.warmup)
    shape = args.shapes[0]
    if args.worker == 'check':
        return check_agreement(shape, args.device, args.ratio, args.rtol)
    return time_steps(args.impl, shape, args.device, args.ratio,
                      args.repeats, args.warmup)


def _spawn(args: argparse.Namespace, shape: Optional[Shape], worker: str,
           impl: Optional[str] = None) -> dict:
    """Run one worker in a fresh interpreter and return its result
    (``shape`` None: the ``--head`` row)."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__), '--worker', worker, '--device',
        args.device, '--ratio',
        repr(args.ratio), '--rtol',
        repr(args.rtol), '--warmup', str(args.warmup)
    ]
    if shape is not None:
        cmd += ['--shapes', shape.name]
    if impl is not None:
        cmd += ['--impl', impl]
    if args.head:
        cmd += ['--head']
    if args.repeats is not None:
        cmd += ['--repeats', str(args.repeats)]
    if args.threads is not None:
        cmd += ['--threads', str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if proc.returncode == 0 and line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    what = f'{worker} {impl}' if impl else worker
    row = shape.name if shape else 'head'
    raise BenchmarkError(
        f'{row}: the {what} worker failed (exit {proc.returncode})'
        f':\n{proc.stderr.strip() or proc.stdout.strip()}')


def device_name(device: str) -> str:
    """GPU name, or the CPU model from ``/proc/cpuinfo``."""
    if device == 'cuda':
        return torch.cuda.get_device_name()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def format_table(header: str, rows: List[dict]) -> str:
    """The Markdown table of the results, under a one-line header."""
    cols = ('shape', 'covariance', 'N', 'C', 'A', 'dense ms', 'isda_mm ms',
            'speed-up (x)', 'dense peak MB', 'isda_mm peak MB')
    lines = [
        header, '', '| ' + ' | '.join(cols) + ' |',
        '|' + '|'.join('---' for _ in cols) + '|'
    ]
    for r in rows:
        s, d, f = r['shape'], r['dense'], r['isda_mm']
        cells = (s.name, s.covariance, s.num_samples, s.num_classes,
                 s.feature_dim, f'{d["ms"]:.1f}', f'{f["ms"]:.1f}',
                 f'{d["ms"] / f["ms"]:.1f}', f'{d["peak_mb"]:.0f}',
                 f'{f["peak_mb"]:.0f}')
        lines.append('| ' + ' | '.join(map(str, cells)) + ' |')
    return '\n'.join(lines)


def _summary(result: dict) -> str:
    """One implementation's timing and memory, for the progress line."""
    return (f'{result["ms"]:.1f} ms (median of {result["repeats"]}, min '
            f'{result["min_ms"]:.1f}), peak {result["peak_mb"]:.0f} MB')


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    """Run the benchmark and print the table.

    Args:
        argv (Sequence[str], optional): Command-line arguments (default:
            ``sys.argv[1:]``).

    Returns:
        list[dict]: Per shape: ``shape``, ``check`` (relative errors) and the
        ``dense`` / ``isda_mm`` timings (empty in worker mode).

    Raises:
        BenchmarkError: If the implementations disagree or a worker fails.
    """
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(RESULT_TAG + json.dumps(_worker(args)), flush=True)
        return []
    threads = torch.get_num_threads()
    header = (f'{datetime.datetime.now():%Y-%m-%d %H:%M}, '
              f'{device_name(args.device)} ({args.device}), '
              f'torch {torch.__version__}, {threads} threads, '
              f'lambda={args.ratio:g}')
    print(header, flush=True)
    start = time.perf_counter()
    if args.head:
        return [_head_main(args, header, start)]
    rows = []
    for i, shape in enumerate(args.shapes, 1):
        check = _spawn(args, shape, 'check')
        row = dict(shape=shape, check=check)
        for impl in IMPLS:
            row[impl] = _spawn(args, shape, 'time', impl)
        rows.append(row)
        d, f = row['dense'], row['isda_mm']
        print(f'[{i}/{len(args.shapes)}] {shape.name} '
              f'(N={shape.num_samples}, C={shape.num_classes}, '
              f'A={shape.feature_dim}, {shape.covariance}): check ok '
              f'(max rel err {max(check.values()):.1e}); '
              f'dense {_summary(d)}; isda_mm {_summary(f)}; '
              f'{d["ms"] / f["ms"]:.1f}x faster', flush=True)
    table = format_table(header, rows)
    print(f'\ntotal {time.perf_counter() - start:.0f} s\n', flush=True)
    print(table, flush=True)
    if args.output:
        with open(args.output, 'w') as f:
            f.write(table + '\n')
    return rows


def _head_main(args: argparse.Namespace, header: str, start: float) -> dict:
    """The ``--head`` run: check, then each head in a fresh process."""
    result = dict(check=_spawn(args, None, 'check'))
    for impl in HEAD_IMPLS:
        result[impl] = _spawn(args, None, 'time', impl)
        print(f'{impl}: {_summary(result[impl])}', flush=True)
    table = format_head_table(header, result)
    print(f'\ntotal {time.perf_counter() - start:.0f} s\n', flush=True)
    print(table, flush=True)
    if args.output:
        with open(args.output, 'w') as f:
            f.write(table + '\n')
    return result


if __name__ == '__main__':
    main()

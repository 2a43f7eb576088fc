"""Core rows: one ISDA step of ``isda_mm`` against the dense algorithm.

One step is what a head does per training iteration: the classifier forward
(``logits = W a + b``), the update of the class statistics with the batch,
the augmented cross-entropy and the backward pass to the classifier (the
gradient reaches ``W`` through the logits and through the ISDA term). Both
implementations (:mod:`isda_mm.core`, and :mod:`.dense`) run on the same
inputs, in one fresh process per row (:func:`measure_row`), after a check
that they give the same loss, weight gradient and statistics; the process
reports each one's median time and the peak memory its steps add.

``--shapes`` also takes custom rows written ``NxCxA:full`` or
``NxCxA:diagonal`` (e.g. ``16x5x8:full``).
"""
import argparse
import gc
from typing import Dict, List, NamedTuple, Optional

import torch
from torch import Tensor, nn

from isda_mm.core import ISDALoss

from .dense import DenseISDA
from .measure import (
    BenchmarkError,
    check_close,
        measure,
    relative_error,
    spawn,
)

IMPLS = ('dense', 'isda_mm')


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
        key: relative_error(fast[key], dense[key])
        for key in ('loss', 'weight_grad', 'mean', 'covariance')
    }
    check_close(shape.name, errors, rtol)
    return errors


def measure_row(shape: Shape,
                device: str,
                ratio: float,
                rtol: float,
                repeats: Optional[int] = None,
                seed: int = 0) -> dict:
    """``isda_mm`` timed first, in the fresh process, then the agreement
    check, then the dense algorithm timed.

    Each implementation is timed in its own steady state: timed in turn,
    the dense step's gigabytes of temporaries, mapped and returned to the
    system at every step, would make the light step fault its pages back
    in. The dense temporaries also dwarf anything the earlier steps leave
    behind, so both peaks are the steps' own.

    Returns:
        dict: ``check`` (relative errors), and per implementation ``ms``
        (median), ``min_ms``, ``repeats`` and ``peak_mb`` (peak memory the
        steps add, MiB).
    """
    out = {}
    for impl in IMPLS[::-1]:
        inputs = make_inputs(shape, device, seed)
        _, step = build_step(impl, shape, inputs, ratio)
        out[impl] = measure(step, device, repeats)
        del inputs, step
        if impl == 'isda_mm':
            out['check'] = check_agreement(shape, device, ratio, rtol, seed)
        gc.collect()
    return out


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


def run(args: argparse.Namespace) -> List[dict]:
    """Each row in a fresh process (:func:`measure_row`)."""
    rows = []
    for i, shape in enumerate(args.shapes, 1):
        row = spawn(dict(mode='core', shape=list(shape), device=args.device,
                         ratio=args.ratio, rtol=args.rtol,
                         repeats=args.repeats), args.threads)
        rows.append(dict(row, shape=shape))
        print(f'[{i}/{len(args.shapes)}] {shape.name}: dense '
              f'{row["dense"]["ms"]:.1f} ms, isda_mm '
              f'{row["isda_mm"]["ms"]:.1f} ms, '
              f'{row["dense"]["ms"] / row["isda_mm"]["ms"]:.1f}x', flush=True)
    return rows


def worker(spec: dict) -> dict:
    """One row, in its own process."""
    return measure_row(Shape(*spec['shape']), spec['device'], spec['ratio'],
                       spec['rtol'], spec['repeats'])


def format_table(rows: List[dict]) -> str:
    """The Markdown table of the core rows."""
    cols = ('shape', 'covariance', 'N', 'C', 'A', 'dense ms', 'isda_mm ms',
            'speed-up (x)', 'dense peak MB', 'isda_mm peak MB')
    lines = ['| ' + ' | '.join(cols) + ' |',
             '|' + '|'.join('---' for _ in cols) + '|']
    for r in rows:
        s, d, f = r['shape'], r['dense'], r['isda_mm']
        cells = (s.name, s.covariance, s.num_samples, s.num_classes,
                 s.feature_dim, f'{d["ms"]:.1f}', f'{f["ms"]:.1f}',
                 f'{d["ms"] / f["ms"]:.1f}',
                 f'{d["peak_mb"]:.0f}',
                 f'{f["peak_mb"]:.0f}')
        lines.append('| ' + ' | '.join(map(str, cells)) + ' |')
    return '\n'.join(lines)

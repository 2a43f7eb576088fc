"""Soft rows: one ISDA step on Mixup targets against the hard-label step.

Both steps are :class:`~isda_mm.core.ISDALoss` on the same classifier,
features and pre-warmed statistics, as a head runs them: the hard one
updates with the labels and scores the augmented logits; the soft one
(DESIGN.md §7) takes the targets Mixup makes from the same labels
(``mu e_y + (1 - mu) e_y'`` with one ``mu`` per batch and a permutation of
the batch), updates with them as weights, and scores the soft
cross-entropy of its augmented logits plus the bound's extra term. Before
timing, the soft step on one-hot targets must give the hard step's loss
and weight gradient. The two are timed in turn in one fresh process per
row.
"""
import argparse
from typing import List

import torch
import torch.nn.functional as F

from isda_mm.core import ISDALoss

from .core import SHAPES, Inputs, make_inputs
from .measure import (
    check_close,
    measure_alternating,
    paired_ratio,
    relative_error,
    spawn,
)

ROWS = tuple(s for s in SHAPES if s.name in ('imagenet-r50', 'cifar100-wrn'))
MU = 0.7


def mixup_targets(labels: torch.Tensor, num_classes: int,
                  mu: float = MU) -> torch.Tensor:
    """Mixup's targets for a batch mixed with a fixed permutation of itself
    (mmpretrain's Mixup draws it at random)."""
    onehot = F.one_hot(labels, num_classes).float()
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(
        2)).to(labels.device)
    return mu * onehot + (1 - mu) * onehot[perm]


def build_steps(shape, inputs: Inputs, ratio: float) -> dict:
    """``hard`` and ``soft`` closures: forward, loss, backward."""
    c, a = shape.num_classes, shape.feature_dim
    device = inputs.features.device
    linear, features, labels = inputs.linear, inputs.features, inputs.labels
    targets = mixup_targets(labels, c)
    losses = {}
    for kind in ('hard', 'soft'):
        losses[kind] = ISDALoss(c, a, shape.covariance).to(device)
        for x, y in inputs.warmup:
            losses[kind].estimator.update(x, y)

    def hard():
        linear.weight.grad = linear.bias.grad = None
        loss = losses['hard'](features, linear(features), labels,
                              linear.weight, ratio)
        loss.backward()
        return loss

    def soft(targets=targets):
        linear.weight.grad = linear.bias.grad = None
        out, extra = losses['soft'].augment_soft(
            features, linear(features), targets, linear.weight, ratio)
        loss = (-(targets * out.log_softmax(1)).sum(1) + extra).mean()
        loss.backward()
        return loss

    return dict(hard=hard, soft=soft)


def check_one_hot(shape, device: str, ratio: float, rtol: float) -> dict:
    """The soft step on one-hot targets against the hard step."""
    out = {}
    for kind in ('hard', 'soft'):
        inputs = make_inputs(shape, device)
        steps = build_steps(shape, inputs, ratio)
        onehot = F.one_hot(inputs.labels, shape.num_classes).float()
        loss = steps['hard']() if kind == 'hard' else steps['soft'](onehot)
        out[kind] = (loss.detach(), inputs.linear.weight.grad.clone())
    errors = dict(
        loss=relative_error(out['soft'][0], out['hard'][0]),
        weight_grad=relative_error(out['soft'][1], out['hard'][1]))
    check_close(f'{shape.name} (one-hot targets)', errors, rtol)
    return errors


def worker(spec: dict) -> dict:
    """One row, in its own process."""
    shape = next(s for s in ROWS if s.name == spec['shape'])
    check = check_one_hot(shape, spec['device'], spec['ratio'], spec['rtol'])
    inputs = make_inputs(shape, spec['device'])
    result = measure_alternating(
        build_steps(shape, inputs, spec['ratio']), spec['device'],
        spec['repeats'])
    return dict(result, check=check)


def run(args: argparse.Namespace) -> List[dict]:
    rows = []
    for i, shape in enumerate(ROWS, 1):
        row = spawn(dict(mode='soft', shape=shape.name, device=args.device,
                         ratio=args.ratio, rtol=args.rtol,
                         repeats=args.repeats), args.threads)
        rows.append(dict(row, shape=shape))
        print(f'[{i}/{len(ROWS)}] {shape.name}: hard '
              f'{row["hard"]["ms"]:.1f} ms, Mixup {row["soft"]["ms"]:.1f} '
              f'ms', flush=True)
    return rows


def format_table(rows: List[dict]) -> str:
    """The Markdown table of the soft rows."""
    cols = ('shape', 'covariance', 'N', 'C', 'A', 'hard labels ms',
            'Mixup ms', 'Mixup / hard')
    lines = ['| ' + ' | '.join(cols) + ' |',
             '|' + '|'.join('---' for _ in cols) + '|']
    for r in rows:
        s = r['shape']
        cells = (s.name, s.covariance, s.num_samples, s.num_classes,
                 s.feature_dim, f'{r["hard"]["ms"]:.1f}',
                 f'{r["soft"]["ms"]:.1f}',
                 f'{paired_ratio(r, "soft", "hard"):.2f}')
        lines.append('| ' + ' | '.join(map(str, cells)) + ' |')
    return '\n'.join(lines)

"""The ISDA bound for soft targets: Mixup, CutMix, label smoothing, a
teacher's probabilities (DESIGN.md §7).

Cross-entropy with a target distribution ``p`` is ``logsumexp(z) - p^T z``.
With the feature translated by ``N(0, lambda S_p)``, Jensen's inequality
gives::

    E[CE(z~, p)] <= logsumexp(z + (lambda / 2) q) - p^T z,
    q_j = (w_j - w̄_p)^T S_p (w_j - w̄_p),    w̄_p = W^T p,

the soft cross-entropy of the augmented logits ``z + (lambda / 2) q``
**plus** ``(lambda / 2) p^T q``. It is today's ISDA for a one-hot ``p``.
A class-weighted loss scores ``t = c * p``; the bound then holds with
``p = t / sum(t)`` in ``w̄`` and the extra term ``(lambda / 2) t^T q``, so
targets need not sum to 1.

``q`` is computed per sample: with a diagonal ``S`` that is two matrix
products, and with full covariances each class's ``S_c W^T`` is made once
(:class:`~isda_mm.core.quadratic.FullQuadratic`) and read by the rows that
use the class. No pattern is searched for: the step waits for the host
once, to check its inputs (and find the classes a full mixture uses).
"""
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from .augment import check_classifier, covariance_access
from .estimator import CovarianceEstimator
from .index import first_true
from .quadratic import DiagonalQuadratic, FullQuadratic


def isda_augment_soft(
        logits: Tensor,
        targets: Tensor,
        weight: Tensor,
        covariance: Union[Tensor, CovarianceEstimator],
        ratio: float,
        mixture: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Augmented logits and the extra term of the soft-target bound.

    Args:
        logits (Tensor): ``(N, C)`` classifier outputs ``W a + b``.
        targets (Tensor): ``(N, C)`` non-negative targets the loss scores
            (rows summing to 1, or scaled by class weights). Constants: no
            gradient flows to them.
        weight (Tensor): ``(C, A)`` classifier weight W.
        covariance (Tensor | CovarianceEstimator): ``(C, A, A)`` or
            ``(C, A)`` class covariances, or the estimator.
        ratio (float): lambda.
        mixture (Tensor, optional): The translation's covariance per sample:
            ``(N,)`` integer labels (``S_y``: label smoothing keeps the
            image's class), or ``(N, C)`` class weights, normalised here
            (``S_p = sum_j m_j S_j``). Defaults to None: the normalised
            targets.

    Returns:
        tuple[Tensor, Tensor]: The augmented logits ``(N, C)`` and the
        extra term ``(lambda / 2) t^T q`` per sample ``(N,)``: the bound is
        the loss's soft cross-entropy of the former plus the latter. Both
        are float32 or wider and differentiable w.r.t. ``logits`` and
        ``weight``.
    """
    stored, shape, covariance_of = covariance_access(covariance)
    name = 'isda_augment_soft'
    check_classifier(name, logits, weight, stored, shape, ratio, targets)
    num_classes = logits.shape[1]
    if logits.dim() != 2 or targets.shape != logits.shape:
        raise ValueError(f'{name}: expected logits and targets (N, C), got '
                         f'{tuple(logits.shape)} and {tuple(targets.shape)}')
    dtype = torch.promote_types(stored.dtype, torch.float32)
    targets = targets.detach().to(dtype)
    anchors = _normalised(targets)
    mixture, checked = _mixture(name, mixture, targets, num_classes)
    # A row with nothing scored is not augmented: no translation either.
    mixture = mixture * (anchors.sum(1, keepdim=True) > 0)
    used = _check(name, checked, mixture if len(shape) == 3 else None,
                  num_classes)
    if ratio == 0:
        return logits.to(dtype), targets.new_zeros(len(targets))
    with torch.autocast(logits.device.type, enabled=False):
        w = weight.to(dtype)
        if len(shape) == 2:
            table = DiagonalQuadratic.apply(w, mixture @ stored.to(dtype),
                                            anchors)
        else:
            table = FullQuadratic.apply(w, anchors, [c for c, _ in used],
                                        covariance_of, _pairs(mixture, used))
        out = torch.add(logits.to(dtype), table, alpha=0.5 * ratio)
        extra = (targets * table).sum(1) * (0.5 * ratio)
    return out, extra


def _normalised(rows: Tensor) -> Tensor:
    # Rows of zeros (nothing scored) stay zeros: not augmented.
    return rows / rows.sum(1, keepdim=True).clamp(min=torch.finfo(
        rows.dtype).tiny)


def _mixture(name: str, mixture: Optional[Tensor], targets: Tensor,
             num_classes: int) -> Tuple[Tensor, List[Tensor]]:
    """``(N, C)`` normalised covariance weights, and the tensors that must
    be finite and non-negative for the inputs to be valid."""
    if mixture is not None and (not torch.is_tensor(mixture)
                                or mixture.dtype == torch.bool
                                or mixture.is_complex()):
        raise TypeError(f'{name}: mixture must be integer labels (N,) or '
                        'floating class weights (N, C)')
    labels = mixture is not None and not mixture.is_floating_point()
    want = targets.shape[:1] if labels else targets.shape
    if mixture is not None and mixture.shape != want:
        kind = 'labels' if labels else 'weights'
        raise ValueError(f'{name}: mixture {kind} must be {tuple(want)}, as '
                         f'the targets, got {tuple(mixture.shape)}')
    if mixture is not None and mixture.device != targets.device:
        raise ValueError(f'{name}: every tensor argument must be on one '
                         f'device, got mixture on {mixture.device}')
    if mixture is None:
        return _normalised(targets), [targets]
    if labels:
        onehot = (mixture[:, None] == torch.arange(
            num_classes, device=mixture.device)).to(targets.dtype)
        # a label out of range has no one: -1
        return onehot, [targets, onehot.sum(1) - 1]
    mixture = mixture.detach().to(targets.dtype)
    return _normalised(mixture), [targets, mixture]


def _check(name: str, checked: List[Tensor], mixture: Optional[Tensor],
           num_classes: int) -> List[Tuple[int, int]]:
    """Raise unless every checked tensor is finite and non-negative; and
    find the classes a full mixture uses, with their numbers of rows: one
    host sync for both."""
    valid = torch.stack([(torch.isfinite(t) & (t >= 0)).all()
                         for t in checked])
    flags = [valid.all()[None]]
    if mixture is not None:
        flags.append((mixture > 0).sum(0))
    host = torch.cat(flags).tolist()  # the one sync
    if not host[0]:
        raise ValueError(f'{name}: targets and mixture weights must be finite '
                         'and non-negative, and mixture labels in '
                         f'[0, {num_classes})')
    return [(c, int(n)) for c, n in enumerate(host[1:]) if n]


def _pairs(mixture: Tensor, used: List[Tuple[int, int]]):
    """The mixture as a full table takes it: the ``(N, K_c)`` weights over
    the classes used, and per class the rows that use it with their
    weights, found without a sync as their numbers are known."""
    counts = [n for _, n in used]
    weights = mixture[:, first_true((mixture > 0).any(0), len(counts))]
    nonzero = first_true((weights > 0).T.flatten(), sum(counts))
    rows = (nonzero % len(mixture)).split(counts)
    values = weights.T.flatten()[nonzero].split(counts)
    return weights, list(zip(rows, values))

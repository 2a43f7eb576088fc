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

``q`` depends on a sample only through its target and covariance weights:
it is computed once per distinct pattern (K of them: one per class for
label smoothing, one per label pair for Mixup and CutMix) and gathered.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from .augment import check_classifier, covariance_access
from .estimator import CovarianceEstimator
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
    mixture = _mixture(name, mixture, targets, num_classes)
    if ratio == 0:
        return logits.to(dtype), targets.new_zeros(len(targets))
    # One row per distinct (target, covariance) pattern.
    keys = torch.cat([_normalised(targets), mixture], 1)
    patterns, inverse = torch.unique(keys, dim=0, return_inverse=True)
    anchors, mix = patterns[:, :num_classes], patterns[:, num_classes:]
    with torch.autocast(logits.device.type, enabled=False):
        w = weight.to(dtype)
        if len(shape) == 2:
            table = DiagonalQuadratic.apply(w, mix @ stored.to(dtype), anchors)
        else:
            classes, pairs = _pairs(mix)
            table = FullQuadratic.apply(w, anchors, classes, covariance_of,
                                        pairs)
        term = table[inverse]
        out = torch.add(logits.to(dtype), term, alpha=0.5 * ratio)
        extra = (targets * term).sum(1) * (0.5 * ratio)
    return out, extra


def _normalised(rows: Tensor) -> Tensor:
    # Rows of zeros (nothing scored) stay zeros: not augmented.
    return rows / rows.sum(1, keepdim=True).clamp(min=torch.finfo(
        rows.dtype).tiny)


def _mixture(name: str, mixture: Optional[Tensor], targets: Tensor,
             num_classes: int) -> Tensor:
    """``(N, C)`` normalised covariance weights, checked with the targets
    in one host sync."""
    if mixture is not None and (not torch.is_tensor(mixture)
                                or mixture.dtype == torch.bool):
        raise TypeError(f'{name}: mixture must be integer labels (N,) or '
                        'floating class weights (N, C)')
    labels = mixture is not None and not mixture.is_floating_point()
    want = targets.shape[:1] if labels else targets.shape
    if mixture is not None and mixture.shape != want:
        kind = 'labels' if labels else 'weights'
        raise ValueError(f'{name}: mixture {kind} must be {tuple(want)}, as '
                         f'the targets, got {tuple(mixture.shape)}')
    checked = [targets]
    if labels:
        onehot = (mixture[:, None] == torch.arange(
            num_classes, device=mixture.device)).to(targets.dtype)
        # a label out of range has no one
        checked.append(onehot.sum(1) - 1)
        mixture = onehot
    elif mixture is not None:
        checked.append(mixture.detach().to(targets.dtype))
    valid = [(torch.isfinite(t) & (t >= 0)).all() for t in checked]
    if not torch.stack(valid).all():
        raise ValueError(f'{name}: targets and mixture weights must be finite '
                         'and non-negative, and mixture labels in '
                         f'[0, {num_classes})')
    return _normalised(targets if mixture is None else mixture)


def _pairs(mix: Tensor):
    """The classes a full table needs (host list) and its mixture: weights
    over them ``(K, K_c)`` and, per class, the patterns that use it."""
    used = (mix > 0).T.tolist()  # one sync for the classes and their rows
    host_classes = [c for c, row in enumerate(used) if any(row)]
    rows = [[p for p, u in enumerate(used[c]) if u] for c in host_classes]
    # one copy to the device for all of them
    flat = torch.tensor(host_classes + [p for r in rows for p in r],
                        device=mix.device)
    classes, flat = flat[:len(host_classes)], flat[len(host_classes):]
    pairs = [(r, mix[r, c]) for r, c in zip(flat.split([len(r) for r in rows]),
                                            host_classes)]
    return host_classes, (mix[:, classes], pairs)

"""The ISDA augmented logits (Wang et al., T-PAMI 2021, Sec. 3.2, Eq. 12).

Minimising cross-entropy on::

    z~_j = z_j + (lambda / 2) (w_j - w_y)^T S_y (w_j - w_y)

bounds the expected cross-entropy over features translated by
``N(0, lambda S_y)``. The quadratic term depends on a sample only through its
label, so it is computed once per class present in the batch (a K x C table,
:mod:`.quadratic`) and gathered by label: no per-sample A x A or C x A tensor
is ever built.
"""
import math
from typing import Optional, Union

import torch
from torch import Tensor

from .estimator import CovarianceEstimator
from .index import ClassIndex, index_classes, samples_last
from .quadratic import DiagonalQuadratic, FullQuadratic


def isda_augment(logits: Tensor,
                 labels: Tensor,
                 weight: Tensor,
                 covariance: Union[Tensor, CovarianceEstimator],
                 ratio: float,
                 ignore_index: Optional[int] = None,
                 index: Optional[ClassIndex] = None) -> Tensor:
    """Augmented logits ``logits + 0.5 * ratio * sigma2``.

    Args:
        logits (Tensor): ``(N, C)`` classifier outputs ``W a + b``, or
            ``(N, C, d1, ...)`` with a sample per position, as
            :func:`torch.nn.functional.cross_entropy` takes them.
        labels (Tensor): ``(N,)`` (or ``(N, d1, ...)``) integer labels.
        weight (Tensor): ``(C, A)`` classifier weight W.
        covariance (Tensor | CovarianceEstimator): ``(C, A, A)`` full
            covariances or ``(C, A)`` diagonals, treated as constants; or the
            estimator itself, which also serves its packed storage.
        ratio (float): lambda, the strength of the augmentation.
        ignore_index (int, optional): Samples with this label are returned
            unchanged. Defaults to None.
        index (ClassIndex, optional): The classes of ``labels`` when the
            caller has them already (:class:`ISDALoss` shares one with the
            statistics update). Defaults to None: found here.

    Returns:
        Tensor: The augmented logits, shaped as ``logits``, differentiable
        w.r.t. ``logits`` and ``weight``; float32 or wider, also when the
        logits are half precision. With ``ratio == 0``, ``logits`` itself.
    """
    stored, shape, covariance_of = check_inputs(logits, labels, weight,
                                                covariance, ratio)
    z = samples_last(logits)
    if index is None:
        index = index_classes(
            labels.reshape(z.shape[0], z.shape[2]), logits.shape[1],
            ignore_index, 'isda_augment')
    if ratio == 0:
        return logits
    dtype = torch.promote_types(stored.dtype, torch.float32)
    with torch.autocast(logits.device.type, enabled=False):
        w = weight.to(dtype)
        if len(shape) == 3:
            table = FullQuadratic.apply(w, index.classes, index.host_classes,
                                        covariance_of)
        else:
            table = DiagonalQuadratic.apply(
                w, stored[index.classes].to(dtype), index.classes)
        # Ignored samples gather the extra zero row.
        table = torch.cat([table, table.new_zeros(1, table.shape[1])])
        # Gathered in the logits' own layout, so the sum keeps it too.
        if z.stride(1) == 1:
            term = table[index.rows].transpose(1, 2)
        else:
            term = table.T[:, index.rows].transpose(0, 1)
        out = torch.add(z.to(dtype), term, alpha=0.5 * ratio)
    return out[0].T if logits.dim() == 2 else out.view(logits.shape)


def covariance_access(covariance: Union[Tensor, CovarianceEstimator]):
    """The stored covariances, their (unpacked) shape, and a function that
    gives class c's full ``(A, A)`` covariance."""
    if isinstance(covariance, CovarianceEstimator):
        return (covariance.covariance, covariance.covariance_shape,
                covariance.class_covariance)
    stored = covariance.detach() if torch.is_tensor(covariance) else None
    return (stored, getattr(covariance, 'shape', None),
            None if stored is None else stored.__getitem__)


def check_inputs(logits: Tensor, labels: Tensor, weight: Tensor,
                 covariance: Union[Tensor, CovarianceEstimator],
                 ratio: float) -> tuple:
    """Raise a clear error for arguments :func:`isda_augment` cannot take
    (without a host sync: label values are checked with the classes);
    return :func:`covariance_access` of the covariance."""
    name = 'isda_augment'
    access = covariance_access(covariance)
    if not torch.is_tensor(labels) or labels.is_floating_point() \
            or labels.dtype == torch.bool:
        raise TypeError(f'{name}: labels must be an integer tensor')
    if logits.dim() < 2 or labels.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f'{name}: expected logits (N, C) and labels (N,), or (N, C, *) '
            f'and (N, *), got {tuple(logits.shape)} and '
            f'{tuple(labels.shape)}')
    check_classifier(name, logits, weight, *access[:2], ratio, labels)
    return access


def check_classifier(name: str, logits: Tensor, weight: Tensor,
                     covariance: Tensor, shape: tuple, ratio: float,
                     *others: Tensor) -> None:
    """Types, shapes and devices of logits, weight and covariance."""
    for arg, value in (('logits', logits), ('weight', weight),
                       ('covariance', covariance)):
        if not torch.is_tensor(value) or not value.is_floating_point():
            raise TypeError(f'{name}: {arg} must be a floating tensor')
    num_classes, dim = logits.shape[1], weight.shape[-1]
    if weight.dim() != 2 or weight.shape[0] != num_classes:
        raise ValueError(
            f'{name}: weight must be (C, A) with C={num_classes} as in the '
            f'logits, got {tuple(weight.shape)}')
    if tuple(shape) not in ((num_classes, dim), (num_classes, dim, dim)):
        raise ValueError(
            f'{name}: covariance must be ({num_classes}, {dim}, {dim}) or '
            f'({num_classes}, {dim}) to match the weight, '
            f'got {tuple(shape)}')
    devices = {t.device for t in (logits, weight, covariance, *others)}
    if len(devices) > 1:
        raise ValueError(f'{name}: every tensor argument must be on one '
                         f'device, got {sorted(map(str, devices))}')
    if not isinstance(ratio, (int, float)) or not ratio >= 0 \
            or not math.isfinite(ratio):
        raise ValueError(
            f'{name}: ratio must be a finite non-negative number, got '
            f'{ratio!r}')

"""The ISDA augmented logits (Wang et al., T-PAMI 2021, Sec. 3.2, Eq. 12).

Minimising cross-entropy on::

    z~_j = z_j + (lambda / 2) (w_j - w_y)^T S_y (w_j - w_y)

bounds the expected cross-entropy over features translated by
``N(0, lambda S_y)``. The quadratic term depends on a sample only through its
label, so it is computed once per class present in the batch (a K x C table)
and gathered by label: no per-sample A x A or C x A tensor is ever built.
"""
from typing import Callable, Optional, Union

import torch
from torch import Tensor

from .estimator import CovarianceEstimator, check_label_range


class _FullQuadratic(torch.autograd.Function):
    """``q[k, j] = (w_j - w_k)^T S_k (w_j - w_k)`` for full covariances.

    The forward product ``P_k = (W - w_k) S_k`` is the K C A^2 part. Since
    ``S_k`` is symmetric and constant, ``dq[k, j] / dw_j = 2 P_k[j]``: the
    backward reuses ``P`` instead of repeating the product, as autograd would.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, classes: Tensor,
                covariance_of: Callable[[int], Tensor]) -> Tensor:
        # One class's covariance at a time: gathering a K x A x A copy would
        # cost more than the product itself.
        diff = weight[None] - weight[classes][:, None]  # (K, C, A)
        prod = torch.empty_like(diff)
        for k, c in enumerate(classes.tolist()):
            torch.mm(diff[k], covariance_of(c).to(weight.dtype), out=prod[k])
        ctx.save_for_backward(prod, classes)
        return torch.linalg.vecdot(prod, diff)

    @staticmethod
    def backward(ctx, grad_q: Tensor):
        prod, classes = ctx.saved_tensors
        grad_q = 2 * grad_q
        # d/dw_j gets +P_k[j] from every row k; d/dw_k gets -sum_j P_k[j].
        grad_w = torch.einsum('kc,kca->ca', grad_q, prod)
        grad_w.index_add_(0, classes,
                          -torch.bmm(grad_q[:, None], prod).squeeze(1))
        return grad_w, None, None


def _diagonal_quadratic(weight: Tensor, var: Tensor,
                        classes: Tensor) -> Tensor:
    """``q[k, j] = sum_a s_k[a] (w_j[a] - w_k[a])^2``: two matrix products.

    ``q`` is unchanged by shifting every ``w_j`` by one vector, so ``W`` is
    centred first: the expanded square then cancels far less in float32.
    """
    weight = weight - weight.mean(0).detach()
    w_k = weight[classes]
    return (var @ weight.square().T - 2 * (var * w_k) @ weight.T +
            (var * w_k.square()).sum(1, keepdim=True))


def isda_augment(logits: Tensor,
                 labels: Tensor,
                 weight: Tensor,
                 covariance: Union[Tensor, CovarianceEstimator],
                 ratio: float,
                 ignore_index: Optional[int] = None) -> Tensor:
    """Augmented logits ``logits + 0.5 * ratio * sigma2``.

    Args:
        logits (Tensor): ``(N, C)`` classifier outputs ``W a + b``.
        labels (Tensor): ``(N,)`` integer labels.
        weight (Tensor): ``(C, A)`` classifier weight W.
        covariance (Tensor | CovarianceEstimator): ``(C, A, A)`` full
            covariances or ``(C, A)`` diagonals, treated as constants; or the
            estimator itself, which also serves its packed storage.
        ratio (float): lambda, the strength of the augmentation.
        ignore_index (int, optional): Rows with this label are returned
            unchanged. Defaults to None.

    Returns:
        Tensor: ``(N, C)`` augmented logits, differentiable w.r.t. ``logits``
        and ``weight``; float32 or wider, also when the logits are half
        precision.
    """
    if isinstance(covariance, CovarianceEstimator):
        stored = covariance.covariance
        shape = covariance.covariance_shape
        covariance_of = covariance.class_covariance
    else:
        stored = covariance.detach() if torch.is_tensor(covariance) else None
        shape = getattr(covariance, 'shape', None)
        covariance_of = stored.__getitem__ if stored is not None else None
    _check(logits, labels, weight, stored, shape, ratio, ignore_index)
    if ratio == 0:
        return logits
    valid = None if ignore_index is None else labels != ignore_index
    kept = labels if valid is None else labels[valid]
    classes, inverse = torch.unique(kept, return_inverse=True)
    dtype = torch.promote_types(stored.dtype, torch.float32)
    with torch.autocast(logits.device.type, enabled=False):
        w = weight.to(dtype)
        if len(shape) == 3:
            table = _FullQuadratic.apply(w, classes, covariance_of)
        else:
            table = _diagonal_quadratic(w, stored[classes].to(dtype),
                                        classes)
        # Ignored rows gather the extra zero row.
        table = torch.cat([table, table.new_zeros(1, table.shape[1])])
        rows = inverse
        if valid is not None:
            rows = torch.full_like(labels, len(classes))
            rows[valid] = inverse
        return logits.to(dtype) + (0.5 * ratio) * table[rows]


def _check(logits: Tensor, labels: Tensor, weight: Tensor, covariance: Tensor,
           shape: tuple, ratio: float, ignore_index: Optional[int]) -> None:
    name = 'isda_augment'
    for arg, value in (('logits', logits), ('weight', weight),
                       ('covariance', covariance)):
        if not torch.is_tensor(value) or not value.is_floating_point():
            raise TypeError(f'{name}: {arg} must be a floating tensor')
    if not torch.is_tensor(labels) or labels.is_floating_point() \
            or labels.dtype == torch.bool:
        raise TypeError(f'{name}: labels must be an integer tensor')
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f'{name}: expected logits (N, C) and labels (N,), '
            f'got {tuple(logits.shape)} and {tuple(labels.shape)}')
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
    devices = {t.device for t in (logits, labels, weight, covariance)}
    if len(devices) > 1:
        raise ValueError(f'{name}: logits, labels, weight and covariance must '
                         f'be on one device, got {sorted(map(str, devices))}')
    if not isinstance(ratio, (int, float)) or ratio < 0:
        raise ValueError(
            f'{name}: ratio must be a non-negative number, got {ratio!r}')
    check_label_range(labels, num_classes, ignore_index, name)

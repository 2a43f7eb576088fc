"""The quadratic term of ISDA, per class present (T-PAMI 2021, Eq. 12).

``q[k, j] = (w_j - w_k)^T S_k (w_j - w_k)`` for the K classes of a batch,
a K x C table that every sample of class k then gathers. Soft targets
(DESIGN.md §7) take the same form per target pattern k, with the anchor
``w_k`` replaced by the target-weighted mean ``w̄_k = W^T r_k`` and ``S_k``
by a mixture of class covariances. Both kinds are custom autograd
functions: their backward is written from the expanded square, so it costs
a few matrix products and never repeats the forward's products.

``q`` is unchanged by shifting every ``w_j`` by one vector, so ``W`` is
centred first: the expanded square then cancels far less in float32, and
the gradient with respect to the centred weight is the gradient with
respect to ``W`` (the shift-invariance makes its column sums vanish; soft
anchors keep it, as their weights sum to 1).

Anchors are class indices (K,), rows of ``W``, or target rows (K, C)
summing to 1 that weight them: a gather or a product forward, an
``index_add_`` or a product backward.
"""
import functools
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor


def outside_autocast(backward: Callable) -> Callable:
    """Run a backward in the precision of its forward, which runs outside
    autocast: a backward called inside an autocast region (mmengine's AMP
    calls it outside; custom loops may not) would otherwise mix half and
    full precision tensors. Unlike ``torch.amp.custom_bwd``, it needs no
    device type."""

    @functools.wraps(backward)
    def run(ctx, grad: Tensor):
        with torch.autocast(grad.device.type, enabled=False):
            return backward(ctx, grad.to(ctx.dtype))

    return run


def anchor_rows(centred: Tensor, anchors: Tensor) -> Tensor:
    """``w_k`` (class indices) or ``w̄_k = W^T r_k`` (target rows)."""
    if anchors.is_floating_point():
        return anchors @ centred
    return centred[anchors]


def spread_to_rows(grad_w: Tensor, anchors: Tensor, grad_anchor: Tensor,
                   alpha: float) -> None:
    """Add ``alpha`` times the anchors' gradient to the rows they read."""
    if anchors.is_floating_point():
        grad_w.addmm_(anchors.T, grad_anchor, alpha=alpha)
    else:
        grad_w.index_add_(0, anchors, grad_anchor, alpha=alpha)


class DiagonalQuadratic(torch.autograd.Function):
    """``q[k, j] = sum_a s_k[a] (w_j[a] - w̄_k[a])^2`` in one matrix product.

    Forward: ``[S, -2 S * W̄] @ [W^2, W]^T + sum_a S W̄^2`` (K x 2A x C).
    Backward: ``dq / dw_j = 2 s_k * (w_j - w̄_k)`` summed with the upstream
    gradient is two more products (C x K x 2A and K x C x A), and the
    anchors pass ``-2 s_k * (w_j - w̄_k)`` on to the rows they read.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, var: Tensor, anchors: Tensor) -> Tensor:
        dim = weight.shape[1]
        both = weight.new_empty(weight.shape[0], 2 * dim)
        centred = torch.sub(weight, weight.mean(0), out=both[:, dim:])
        torch.square(centred, out=both[:, :dim])
        w_k = anchor_rows(centred, anchors)
        s_w = var * w_k
        offset = (s_w * w_k).sum(1, keepdim=True)
        table = torch.addmm(offset, torch.cat([var, -2 * s_w], 1), both.T)
        ctx.save_for_backward(centred, var, w_k, s_w, anchors)
        ctx.dtype = weight.dtype
        return table

    @staticmethod
    @outside_autocast
    def backward(ctx, grad: Tensor):
        centred, var, w_k, s_w, anchors = ctx.saved_tensors
        dim = centred.shape[1]
        # d/dw_j: 2 (w_j * (g^T S)_j - (g^T (S * W̄))_j); with -2 g in the
        # product, one pass makes it.
        g_s = (-2 * grad).T @ torch.cat([var, s_w], 1)
        grad_w = torch.addcmul(g_s[:, dim:], centred, g_s[:, :dim], value=-1)
        # d/dw̄_k: -2 s_k * ((g W)_k - (sum_j g_kj) w̄_k).
        grad_k = torch.addcmul(grad @ centred, grad.sum(1, keepdim=True), w_k,
                               value=-1)
        spread_to_rows(grad_w, anchors, grad_k * var, alpha=-2)
        return grad_w, None, None


class FullQuadratic(torch.autograd.Function):
    """``q[k, j] = (w_j - w̄_k)^T S_k (w_j - w̄_k)`` for full covariances.

    The products ``P_c = S_c W^T`` (A x A x C each) of the classes present
    are the unavoidable K C A^2 part. Row k's covariance is ``S_c`` of its
    class, or for soft targets a mixture ``sum_c m_kc S_c``. With
    ``y_k = sum_c m_kc S_c w̄_k = sum_c m_kc P_c r_k``::

        q[k, j] = sum_c m_kc w_j . P_c[:, j] - 2 y_k . w_j + y_k . w̄_k
        dq[k, j] / dw_j = 2 (sum_c m_kc P_c[:, j] - y_k) = -dq[k, j] / dw̄_k

    so the backward reuses ``P`` instead of repeating the product. Each
    ``P_c`` is reduced right after its product, while it is in cache, and
    read once more in the backward. For a hard label ``y_k = S_k w_k`` is
    column k of ``P_k``.

    ``mixture`` is None for hard labels (row k is class ``host_classes[k]``),
    else the (K, K_c) weights ``m`` over ``host_classes`` and, per class,
    the rows that use it with their weights (the nonzeros of ``m``): a
    mixed image reads two classes' products, not all of them.
    """

    @staticmethod
    def forward(ctx,
                weight: Tensor,
                anchors: Tensor,
                host_classes: List[int],
                covariance_of: Callable[[int], Tensor],
                mixture: Optional[Tuple[Tensor, Sequence[Tuple[
                    Tensor, Tensor]]]] = None) -> Tensor:
        # W^T, centred and contiguous: S_c W^T runs near the GEMM peak.
        centred = (weight - weight.mean(0)).T.contiguous()
        prod = weight.new_empty(len(host_classes), *centred.shape)
        diag = weight.new_empty(len(host_classes), weight.shape[0])
        # One class at a time: gathering a K x A x A copy of the
        # covariances would cost more than the product itself on a CPU.
        for k, c in enumerate(host_classes):
            p = torch.mm(covariance_of(c).to(weight.dtype), centred,
                         out=prod[k])
            torch.sum(p * centred, 0, out=diag[k])
        w_k = anchor_rows(centred.T, anchors)
        if mixture is None:
            y = prod[torch.arange(len(anchors), device=anchors.device), :,
                     anchors]
            table = diag
        else:
            weights, pairs = mixture
            y = torch.zeros_like(w_k)
            for p, (rows, m) in zip(prod, pairs):  # S_c w̄ = P_c r
                y.index_add_(0, rows, (anchors[rows] @ p.T) * m[:, None])
            table = weights @ diag
        table.addmm_(y, centred, alpha=-2)
        table += (y * w_k).sum(1, keepdim=True)
        ctx.save_for_backward(prod, y, anchors)
        ctx.mixture, ctx.dtype = mixture, weight.dtype
        return table

    @staticmethod
    @outside_autocast
    def backward(ctx, grad: Tensor):
        prod, y, anchors = ctx.saved_tensors
        mixture = ctx.mixture
        grad = 2 * grad
        per_class = grad if mixture is None else mixture[0].T @ grad
        grad_t = prod.new_zeros(prod.shape[1:])
        grad_k = torch.zeros_like(y)
        for k, p in enumerate(prod):  # one read of each P_c for both sums
            grad_t.addcmul_(p, per_class[k])
            if mixture is None:
                torch.mv(p, grad[k], out=grad_k[k])
            else:
                rows, m = mixture[1][k]
                grad_k.index_add_(0, rows, (grad[rows] @ p.T) * m[:, None])
        grad_w = torch.addmm(grad_t.T, grad.T, y, alpha=-1)
        # The anchors' rows also move as w̄_k.
        grad_k.addcmul_(grad.sum(1, keepdim=True), y, value=-1)
        spread_to_rows(grad_w, anchors, grad_k, alpha=-1)
        return grad_w, None, None, None, None

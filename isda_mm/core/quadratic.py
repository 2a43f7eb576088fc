"""The quadratic term of ISDA, per class present (T-PAMI 2021, Eq. 12).

``q[k, j] = (w_j - w_k)^T S_k (w_j - w_k)`` for the K classes of a batch,
a K x C table that every sample of class k then gathers. Both kinds are
custom autograd functions: their backward is written from the expanded
square, so it costs a few matrix products and never repeats the forward's
products.

``q`` is unchanged by shifting every ``w_j`` by one vector, so ``W`` is
centred first: the expanded square then cancels far less in float32, and
the gradient with respect to the centred weight is the gradient with
respect to ``W`` (the shift-invariance makes its column sums vanish).
"""
from typing import Callable, List

import torch
from torch import Tensor


class DiagonalQuadratic(torch.autograd.Function):
    """``q[k, j] = sum_a s_k[a] (w_j[a] - w_k[a])^2`` in one matrix product.

    Forward: ``[S, -2 S * W_K] @ [W^2, W]^T + sum_a S W_K^2`` (K x 2A x C).
    Backward: ``dq / dw_j = 2 s_k * (w_j - w_k)`` summed with the upstream
    gradient is two more products (C x K x 2A and K x C x A).
    """

    @staticmethod
    def forward(ctx, weight: Tensor, var: Tensor, classes: Tensor) -> Tensor:
        dim = weight.shape[1]
        both = weight.new_empty(weight.shape[0], 2 * dim)
        centred = torch.sub(weight, weight.mean(0), out=both[:, dim:])
        torch.square(centred, out=both[:, :dim])
        w_k = centred[classes]
        s_w = var * w_k
        offset = (s_w * w_k).sum(1, keepdim=True)
        table = torch.addmm(offset, torch.cat([var, -2 * s_w], 1), both.T)
        ctx.save_for_backward(centred, var, w_k, s_w, classes)
        return table

    @staticmethod
    def backward(ctx, grad: Tensor):
        centred, var, w_k, s_w, classes = ctx.saved_tensors
        dim = centred.shape[1]
        # d/dw_j: 2 (w_j * (g^T S)_j - (g^T (S * W_K))_j); with -2 g in the
        # product, one pass makes it.
        g_s = (-2 * grad).T @ torch.cat([var, s_w], 1)
        grad_w = torch.addcmul(g_s[:, dim:], centred, g_s[:, :dim], value=-1)
        # d/dw_k: -2 s_k * ((g W)_k - (sum_j g_kj) w_k).
        grad_k = torch.addcmul(grad @ centred, grad.sum(1, keepdim=True), w_k,
                               value=-1)
        grad_w.index_add_(0, classes, grad_k * var, alpha=-2)
        return grad_w, None, None


class FullQuadratic(torch.autograd.Function):
    """``q[k, j] = (w_j - w_k)^T S_k (w_j - w_k)`` for full covariances.

    The K products ``P_k = S_k W^T`` (A x A x C each) are the unavoidable
    K C A^2 part. With ``v_k = S_k w_k`` (column ``k`` of ``P_k``, as
    ``S_k`` is symmetric)::

        q[k, j] = w_j . P_k[:, j] - 2 v_k . w_j + v_k . w_k
        dq[k, j] / dw_j = 2 (P_k[:, j] - v_k) = -dq[k, j] / dw_k

    so the backward reuses ``P`` instead of repeating the product. Each
    ``P_k`` is reduced right after its product, while it is in cache, and
    read once more in the backward.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, classes: Tensor, host_classes: List[int],
                covariance_of: Callable[[int], Tensor]) -> Tensor:
        # W^T, centred and contiguous: S_k W^T runs near the GEMM peak.
        centred = (weight - weight.mean(0)).T.contiguous()
        prod = weight.new_empty(len(host_classes), *centred.shape)
        table = weight.new_empty(len(host_classes), weight.shape[0])
        # One class at a time: gathering a K x A x A copy of the
        # covariances would cost more than the product itself on a CPU.
        for k, c in enumerate(host_classes):
            p = torch.mm(covariance_of(c).to(weight.dtype), centred,
                         out=prod[k])
            torch.sum(p * centred, 0, out=table[k])
        v = prod[torch.arange(len(classes), device=classes.device), :,
                 classes]
        table.addmm_(v, centred, alpha=-2)
        table += (v * centred.T[classes]).sum(1, keepdim=True)
        ctx.save_for_backward(prod, v, classes)
        return table

    @staticmethod
    def backward(ctx, grad: Tensor):
        prod, v, classes = ctx.saved_tensors
        grad = 2 * grad
        grad_t = torch.zeros_like(prod[0])
        grad_k = torch.empty_like(v)
        for k, p in enumerate(prod):  # one read of each P_k for both sums
            grad_t.addcmul_(p, grad[k])
            torch.mv(p, grad[k], out=grad_k[k])
        grad_w = torch.addmm(grad_t.T, grad.T, v, alpha=-1)
        # The rows of the classes present also move as w_k.
        grad_k.addcmul_(grad.sum(1, keepdim=True), v, value=-1)
        grad_w.index_add_(0, classes, grad_k, alpha=-1)
        return grad_w, None, None, None

"""Per-class moments of one batch, and the exact pooled merge (T-PAMI 2021,
Sec. 3.3).

A batch's per-class sums are segment sums over its samples. How to compute
them is a per-device choice, measured on the CPU (``tools/benchmark``):

- **CPU**: ``index_add_`` over the samples for the sums (1.9 ms for
  8450 x 512 features of 19 classes, against 4.8-7.2 ms as a product with
  one-hot labels). The centred second pass goes in chunks of about 4 MB,
  whose temporaries the allocator reuses instead of faulting in fresh pages
  (a 67 MB temporary costs more to map than to compute): a gather and
  ``index_add_`` when samples are rows, products with the one-hot labels
  when channels come first (5.6 ms for 2 x 128 x 9409 pixels, against 17 ms
  by gathering across the channels).
- **GPU**: products with the one-hot labels, unchunked. ``index_add_``
  there is an atomic add per element, and with few classes the threads
  contend for the same K x A addresses; a matrix product has no contention.
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from .index import ClassIndex

# Elements per chunk of the CPU's centred pass (4 MB of float32).
CHUNK = 2**20


def by_products(device: torch.device) -> bool:
    """Segment sums as one-hot products (GPU) or ``index_add_`` (CPU)."""
    return device.type != 'cpu'


class Moments(NamedTuple):
    """Diagonal statistics of the K classes present in a batch.

    ``count`` is int64 (K,), ``weight`` the samples' weight sums (the
    counts again when each sample counts once), ``mean`` (K, A),
    ``covariance`` the biased (divided by the weight) variances (K, A).
    """
    classes: Tensor
    count: Tensor
    weight: Tensor
    mean: Tensor
    covariance: Tensor


def class_means(features: Tensor, index: ClassIndex) -> Tensor:
    """``(K, A)`` means of the classes present.

    Args:
        features (Tensor): ``(B, A, P)`` features of the indexed samples.
        index (ClassIndex): The classes of their labels.
    """
    k, dim = index.num_present, features.shape[1]
    if by_products(features.device):
        sums = features.new_zeros(dim, k)
        for x, rows, w in _chunks(features, index, features.shape[2]):
            sums.addmm_(_counted(x, rows, index), _onehot(rows, k, x.dtype, w))
        sums = sums.T
    elif features.stride(1) == 1:  # samples are rows in memory
        sums = features.new_zeros(k + 1, dim)
        for x, rows, w in _chunks(features, index, features.shape[2]):
            sums.index_add_(0, rows, x.T if w is None else x.T * w[:, None])
    else:
        sums = features.new_zeros(dim, k + 1)
        for x, rows, w in _chunks(features, index, features.shape[2]):
            sums.index_add_(1, rows, x if w is None else x * w)
        sums = sums.T
    return sums[:k] / index.sums[:, None].to(sums.dtype)


def batch_moments(features: Tensor, index: ClassIndex) -> Moments:
    """Per-class count, mean and biased variances of one batch.

    The variances are computed from the centred features (two passes), so
    a large mean does not cancel them away in float32.

    Args:
        features (Tensor): ``(B, A, P)`` features, detached.
        index (ClassIndex): The classes of their labels.

    Returns:
        Moments: The statistics of the K classes present, with the
        diagonal of the covariance (K, A); none if the batch is rejected.
    """
    k, dim = (index.num_present if index.finite else 0), features.shape[1]
    if not k:
        empty = features.new_zeros(0, dim)
        return Moments(index.classes[:0], index.counts[:0], index.sums[:0],
                       empty, empty)
    mean = class_means(features, index)
    products = by_products(features.device)
    size = features.shape[2] if products else max(1, CHUNK // dim)
    if not products and features.stride(1) == 1:
        # Rows: subtract each one's gathered mean, add up by index.
        padded = torch.cat([mean, mean.new_zeros(1, dim)])
        squares = torch.zeros_like(padded)
        for x, rows, w in _chunks(features, index, size):
            centred = torch.index_select(padded, 0, rows)
            torch.sub(x.T, centred, out=centred)
            centred.square_()
            if w is not None:
                centred *= w[:, None]
            squares.index_add_(0, rows, centred)
    else:
        # Channels first: X - mean[rows] and the sums as products with the
        # one-hot labels, written once in X's layout.
        squares = mean.new_zeros(dim, k)
        for x, rows, w in _chunks(features, index, size):
            onehot = _onehot(rows, k, x.dtype)
            centred = torch.addmm(_counted(x, rows, index), mean.T, onehot.T,
                                  alpha=-1)
            squares.addmm_(centred.square_(), _onehot(rows, k, x.dtype, w))
        squares = squares.T
    return Moments(index.classes, index.counts, index.sums, mean,
                   squares[:k] / index.sums[:, None].to(squares.dtype))


def _chunks(features: Tensor, index: ClassIndex, size: int):
    """``(A, P')`` pieces of the features with their rows and weights (or
    None), image by image and ``size`` samples at a time."""
    for i, (x, rows) in enumerate(zip(features, index.rows)):
        for start in range(0, len(rows), size):
            piece = slice(start, start + size)
            w = None if index.weights is None else index.weights[
                i, piece].to(x.dtype)
            yield x[:, piece], rows[piece], w


def _counted(x: Tensor, rows: Tensor, index: ClassIndex) -> Tensor:
    """Features whose ignored samples reach no product with the one-hot
    rows, not even as ``0 * NaN`` (zeroed when they are not finite)."""
    if index.skipped_finite:
        return x
    return torch.where(rows < index.num_present, x, 0)


def _onehot(rows: Tensor, k: int, dtype: torch.dtype,
            weights: Optional[Tensor] = None) -> Tensor:
    """``(P, K)`` one-hot rows of the samples' classes, scaled by their
    weights if given; ignored samples (row K) get zeros. ``F.one_hot``
    would check the range with a sync."""
    onehot = (rows[:, None] == torch.arange(k, device=rows.device)).to(dtype)
    return onehot if weights is None else onehot * weights[:, None]


def merge_weight(old_count: Tensor, new_count: Tensor,
                 dtype: torch.dtype) -> Tensor:
    """``w = m / (n + m)`` for counts or weight sums, in float64 so that
    any count stays exact."""
    old_count, new_count = old_count.double(), new_count.double()
    total = old_count + new_count
    return (new_count / torch.where(total > 0, total, 1)).to(dtype)


def merge_moments(old: Moments, new: Moments) -> Moments:
    """Pool two sets of diagonal moments of the same classes (exact).

    With ``w = m / (n + m)`` for ``n`` old and ``m`` new samples (or their
    weight sums: the merge is exact for real-valued weights too)::

        mean = (1 - w) mean_old + w mean_new
        var  = (1 - w) var_old + w var_new + w (1 - w) d^2,
        d    = mean_old - mean_new
    """
    w = merge_weight(old.weight, new.weight, new.mean.dtype)[:, None]
    d = old.mean - new.mean
    var = torch.lerp(old.covariance, new.covariance, w) + w * (1 - w) * d**2
    return Moments(new.classes, old.count + new.count,
                   old.weight + new.weight, old.mean - w * d, var)

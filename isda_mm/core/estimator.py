"""Running class-conditional feature statistics for ISDA.

Implements the estimator of Wang et al., "Regularizing Deep Networks with
Semantic Data Augmentation" (T-PAMI 2021), Sec. 3.3: per class, the mean and
covariance of every feature seen so far, merged batch by batch with the exact
pooled (population) formula rather than a moving average.
"""
import warnings
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .index import (
    ClassIndex,
    index_class_weights,
    index_classes,
    samples_last,
)
from .moments import (
    Moments,
    batch_moments,
    class_means,
    merge_moments,
    merge_weight,
)

COVARIANCE_KINDS = ('full', 'diagonal')


class CovarianceEstimator(nn.Module):
    """Exact running mean and covariance of features, per class.

    For a batch holding ``m`` samples of class c with mean ``mu_b`` and biased
    covariance ``S_b``, and ``w = m / (n_c + m)``::

        mu_c <- (1 - w) mu_c + w mu_b
        S_c  <- (1 - w) S_c + w S_b + w (1 - w) (mu_c - mu_b)(mu_c - mu_b)^T
        n_c  <- n_c + m

    which is the population covariance of every feature seen. Classes absent
    from a batch are untouched. The statistics are persistent buffers, so
    checkpoints, ``.to()`` and resume carry them.

    Soft targets (Mixup, CutMix) may give a sample weights over several
    classes: it then counts ``p_j`` towards class j, ``m`` and ``n`` become
    weight sums, and the merge is the exact weighted population covariance
    (DESIGN.md §7). ``weight_sum`` keeps those sums; ``count`` keeps the
    number of samples that reached each class.

    Args:
        num_classes (int): Number of classes C.
        feature_dim (int): Feature width A (the classifier's input).
        covariance (str): ``'full'`` keeps (C, A, A), ``'diagonal'`` keeps
            only the variances (C, A). Defaults to ``'full'``.
        ignore_index (int, optional): Label of samples to skip.
            Defaults to None.
        dtype (torch.dtype): Dtype of mean and covariance. Features in half
            precision (e.g. under autocast) are promoted to it.
            Defaults to ``torch.float32``.
        sync_ranks (bool): Under ``torch.distributed``, give every rank the
            statistics of the global batch (True), or keep per-rank
            statistics as the paper's code did (False). Defaults to True.
        packed (bool): Store each full covariance as its upper triangle,
            ``(C, A (A + 1) / 2)``, which halves the memory of ``'full'``
            without changing a value; one class at a time is unpacked when
            it is used. Defaults to False.

    Note:
        Counts are int64, so they stay exact far past 2^24, where a float32
        counter stops counting single samples.
    """

    def __init__(self,
                 num_classes: int,
                 feature_dim: int,
                 covariance: str = 'full',
                 ignore_index: Optional[int] = None,
                 dtype: torch.dtype = torch.float32,
                 sync_ranks: bool = True,
                 packed: bool = False) -> None:
        super().__init__()
        for name, value in (('num_classes', num_classes), ('feature_dim',
                                                           feature_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}')
        if covariance not in COVARIANCE_KINDS:
            raise ValueError(f'covariance must be one of {COVARIANCE_KINDS}, '
                             f'got {covariance!r}')
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f'dtype must be torch.float32 or torch.float64, got {dtype}')
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.covariance_kind = covariance
        if packed and covariance != 'full':
            raise ValueError("packed=True stores full covariances; set "
                             "covariance='full' or packed=False")
        self.ignore_index = ignore_index
        self.sync_ranks = sync_ranks
        self.packed = packed
        self._triangle = None  # (rows, cols) of the upper triangle, cached
        full = covariance == 'full'
        self.covariance_shape = (num_classes, feature_dim) + (
            (feature_dim, ) if full else ())
        stored_shape = self.covariance_shape
        if packed:
            stored_shape = (num_classes, feature_dim * (feature_dim + 1) // 2)
        self.register_buffer(
            'mean', torch.zeros(num_classes, feature_dim, dtype=dtype))
        self.register_buffer('covariance',
                             torch.zeros(stored_shape, dtype=dtype))
        self.register_buffer('count',
                             torch.zeros(num_classes, dtype=torch.int64))
        self.register_buffer(
            'weight_sum', torch.zeros(num_classes, dtype=torch.float64))

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, '
                f'feature_dim={self.feature_dim}, '
                f'covariance={self.covariance_kind!r}, '
                f'ignore_index={self.ignore_index}, packed={self.packed}')

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints from before soft targets: every sample weighed 1.
        if prefix + 'weight_sum' not in state_dict \
                and prefix + 'count' in state_dict:
            state_dict[prefix + 'weight_sum'] = \
                state_dict[prefix + 'count'].double()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def class_covariance(self, c: int) -> Tensor:
        """The ``(A, A)`` covariance of class ``c`` (a view unless packed).

        Only for ``covariance='full'``.
        """
        if not self.packed:
            return self.covariance[c]
        rows, cols = self.triangle_indices()
        cov = self.covariance.new_empty(self.feature_dim, self.feature_dim)
        cov[rows, cols] = self.covariance[c]
        cov[cols, rows] = self.covariance[c]
        return cov

    def triangle_indices(self) -> Tuple[Tensor, Tensor]:
        """Row and column of each packed entry (row-major upper triangle)."""
        device = self.covariance.device
        if self._triangle is None or self._triangle[0].device != device:
            dim = self.feature_dim
            self._triangle = tuple(torch.triu_indices(dim, dim, device=device))
        return self._triangle

    @torch.no_grad()
    def update(self,
               features: Tensor,
               labels: Tensor,
               index: Optional[ClassIndex] = None) -> bool:
        """Merge one batch into the statistics.

        Under ``torch.distributed`` with ``sync_ranks=True`` this is a
        collective: every rank must call it, and afterwards every rank holds
        the statistics of all ranks' batches together.

        Args:
            features (Tensor): ``(N, A)`` floating features (detached here),
                or ``(N, A, d1, ...)`` with a sample per position.
            labels (Tensor): ``(N,)`` (or ``(N, d1, ...)``) integer labels
                in ``[0, C)`` or equal to ``ignore_index``; or ``(N, C)``
                non-negative class weights of ``(N, A)`` features (a mixed
                image counts ``p_j`` towards class j; a weight towards class
                ``ignore_index`` is skipped, as that label would be).
            index (ClassIndex, optional): :meth:`index` of these features
                and labels, when the caller has it already (and has checked
                them with :meth:`check_inputs`). Defaults to None: checked
                and found here.

        Returns:
            bool: False if this rank's batch was rejected because its
            features hold NaN or Inf; a warning says so and it changes no
            statistics (other ranks' batches are still merged).
        """
        if index is None:
            self.check_inputs(features, labels)
        features = samples_last(features.detach())
        if labels.is_floating_point():
            index, sample = index_class_weights(
                labels, self.ignore_index, type(self).__name__, features,
                self._seen())
            features = features[:, :, sample]
        elif index is None:
            index = self.index(features, labels)
        finite = index.finite  # this rank's, whatever the others sent
        if not finite:
            warnings.warn(
                f'{type(self).__name__}: a batch with NaN or Inf features '
                'was skipped; the statistics are unchanged.')
        with torch.autocast(features.device.type, enabled=False):
            features = features.to(self.mean.dtype)
            distributed = self.sync_ranks and distributed_world_size() > 1
            if self.covariance_kind == 'full':
                if distributed:
                    features, index = self._gather_rows(features, index)
                if index.finite and index.num_present:
                    self._update_full(features, index)
            else:
                batch = batch_moments(features, index)
                if distributed:
                    batch = gather_batch_moments(batch, self.num_classes)
                self._merge(batch)
        return finite

    def index(self,
              features: Tensor,
              labels: Tensor,
              weights: Optional[Tensor] = None) -> ClassIndex:
        """The classes of a batch, checked, with one host sync.

        Args:
            features (Tensor): ``(B, A, P)`` features (see
                :func:`~isda_mm.core.index.samples_last`).
            labels (Tensor): Their labels, ``B * P`` of them.
            weights (Tensor, optional): Each sample's weight towards its
                class, shaped as ``labels``. Defaults to None: one each.

        Returns:
            ClassIndex: What :meth:`update` and
            :func:`~isda_mm.core.isda_augment` need to know.
        """
        shape = (features.shape[0], features.shape[2])
        return index_classes(
            labels.reshape(shape), self.num_classes, self.ignore_index,
            type(self).__name__, features, self._seen(),
            None if weights is None else weights.reshape(shape))

    def _seen(self) -> Optional[Tensor]:
        """The weight sums the full update needs on the host."""
        return self.weight_sum if self.covariance_kind == 'full' else None

    @torch.no_grad()
    def summary(self) -> Dict[str, Tensor]:
        """Scalars worth logging: classes seen and their mean covariance
        trace (the average feature variance summed over dimensions)."""
        seen = self.count > 0
        var = self.covariance
        if self.packed:
            # Row i of the upper triangle starts at its diagonal entry.
            i = torch.arange(self.feature_dim, device=var.device)
            var = var[:, i * self.feature_dim - i * (i - 1) // 2]
        elif self.covariance_kind == 'full':
            var = torch.diagonal(var, dim1=1, dim2=2)
        # Masked sums rather than indexing: no host-device sync per step.
        num_seen = seen.sum()
        trace = (var.sum(1) * seen).sum() / num_seen.clamp(min=1)
        return dict(classes_seen=num_seen, mean_trace=trace)

    def _update_full(self, features: Tensor, index: ClassIndex) -> None:
        """The pooled merge, written into the (C, A, A) buffer in place.

        ``(1 - w) S + (w / m) [X; r d]^T [X; r d]`` per class present, with
        ``X`` its centred batch rows (times the square roots of their
        weights, if any), ``m`` their weight sum and ``r^2 = (1 - w) m``,
        which is
        ``(1 - w) S + (w / m) X^T X + w (1 - w) d d^T`` in one pass over
        ``S``: no K x A x A temporary, which on any device costs more than
        the ``sum_k m_k A^2`` arithmetic. The rows of all classes are
        prepared together; the loop only multiplies.
        """
        mean = class_means(features, index)
        rows = index.rows.flatten()
        flat = features.transpose(1, 2).reshape(len(rows), -1)
        padded = torch.cat([mean, mean.new_zeros(1, mean.shape[1])])
        centred = flat - padded[rows]
        if index.weights is not None:
            centred *= index.weights.flatten().to(centred.dtype).sqrt()[:,
                                                                        None]
        w = merge_weight(self.weight_sum[index.classes], index.sums,
                         mean.dtype)
        d = (self.mean[index.classes] - mean) * (
            (1 - w) * index.sums.to(w.dtype)).sqrt()[:, None]
        # A stable sort puts each class's rows, then its d, in one block;
        # ignored rows (key K) go last and are cut off.
        k = index.num_present
        keys = torch.cat([rows, torch.arange(k, device=rows.device)])
        order = torch.argsort(keys, stable=True)[:sum(index.host_counts) + k]
        blocks = torch.split(torch.cat([centred, d])[order],
                             [m + 1 for m in index.host_counts])
        for c, x, m, n in zip(index.host_classes, blocks, index.host_sums,
                              index.host_seen):
            w = m / (n + m)
            cov = self.class_covariance(c)
            cov.addmm_(x.T, x, beta=1 - w, alpha=w / m)
            if self.packed:
                self.covariance[c] = cov[self.triangle_indices()]
        self._merge_means(index.classes, index.counts, index.sums, mean)

    def _merge(self, batch: Moments) -> None:
        c = batch.classes
        old = Moments(c, self.count[c], self.weight_sum[c], self.mean[c],
                      self.covariance[c])
        self.covariance[c] = merge_moments(old, batch).covariance
        self._merge_means(c, batch.count, batch.weight, batch.mean)

    def _merge_means(self, classes: Tensor, count: Tensor, weight: Tensor,
                     mean: Tensor) -> None:
        w = merge_weight(self.weight_sum[classes], weight, mean.dtype)
        self.mean[classes] = torch.lerp(self.mean[classes], mean, w[:, None])
        self.count[classes] += count
        self.weight_sum[classes] += weight.double()

    def _gather_rows(self, features: Tensor, index: ClassIndex):
        """Every rank's counted rows (none if its batch was rejected) and
        their index: the full update of the global batch."""
        rows = index.rows.flatten()
        keep = rows < index.num_present
        if not index.finite:
            keep = torch.zeros_like(keep)
        flat = features.transpose(1, 2).reshape(len(rows), -1)
        if index.weights is not None:  # one more column, gathered alike
            flat = torch.cat([flat, index.weights.reshape(-1, 1).to(
                flat.dtype)], 1)
        flat, labels = gather_rows(flat[keep], index.classes[rows[keep]])
        weights = None
        if index.weights is not None:
            flat, weights = flat[:, :-1], flat[:, -1][None]
        return flat.T[None], self.index(flat.T[None], labels, weights)

    def check_inputs(self, features: Tensor, labels: Tensor) -> None:
        """Raise a clear error for features or labels update cannot take."""
        name = type(self).__name__
        if not torch.is_tensor(features) or not features.is_floating_point():
            raise TypeError(
                f'{name}: features must be a floating tensor, '
                f'got {getattr(features, "dtype", type(features).__name__)}')
        if not torch.is_tensor(labels) or labels.is_complex() \
                or labels.dtype == torch.bool:
            raise TypeError(
                f'{name}: labels must be an integer tensor or floating class '
                f'weights, got '
                f'{getattr(labels, "dtype", type(labels).__name__)}')
        dim = self.feature_dim
        if features.dim() < 2 or features.shape[1] != dim:
            raise ValueError(
                f'{name}: expected features of shape (N, {dim}) or '
                f'(N, {dim}, *) (feature_dim={dim}), '
                f'got {tuple(features.shape)}')
        want = features.shape[:1] + features.shape[2:]
        if labels.is_floating_point():
            want = (features.shape[0], self.num_classes)
            if features.dim() != 2 or labels.shape != want:
                raise ValueError(
                    f'{name}: class weights must be (N, {self.num_classes}) '
                    f'for features (N, {dim}), got {tuple(labels.shape)} and '
                    f'{tuple(features.shape)}')
        if labels.shape != want:
            raise ValueError(
                f'{name}: expected labels of shape {tuple(want)} to match '
                f'the features, got {tuple(labels.shape)}')
        device = self.mean.device
        if features.device != device or labels.device != device:
            raise ValueError(
                f'{name}: features are on {features.device} and labels on '
                f'{labels.device}, but the statistics are on {device}; '
                'move the module with .to()')


def distributed_world_size() -> int:
    """World size of the default process group, 1 when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def gather_rows(features: Tensor, labels: Tensor):
    """All ranks' features and labels, concatenated in rank order.

    Gathering the N x A features costs far less than reducing C x A x A
    covariances, and gives every rank exactly what one process would
    compute on the concatenated batch.
    """
    device = labels.device
    sizes = [torch.zeros(1, dtype=torch.int64, device=device)
             for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([len(labels)], device=device))
    sizes = [int(n) for n in sizes]
    rows = max(sizes)
    padded_f = features.new_zeros(rows, features.shape[1])
    padded_f[:len(labels)] = features
    padded_y = labels.new_zeros(rows)
    padded_y[:len(labels)] = labels
    all_f = [torch.empty_like(padded_f) for _ in sizes]
    all_y = [torch.empty_like(padded_y) for _ in sizes]
    dist.all_gather(all_f, padded_f)
    dist.all_gather(all_y, padded_y)
    return (torch.cat([f[:n] for f, n in zip(all_f, sizes)]),
            torch.cat([y[:n] for y, n in zip(all_y, sizes)]))


def gather_batch_moments(local: Moments, num_classes: int) -> Moments:
    """Moments of all ranks' batches together, from per-rank moments.

    Each rank contributes count, mean and variance for all C classes
    (C x (2A + 1) numbers); they are pooled in rank order with the exact
    merge, so every rank ends with the same result.
    """
    dim = local.mean.shape[1]
    # One float64 buffer per rank: counts, weights, means, variances.
    packed = local.mean.new_zeros(num_classes, 2 * dim + 2,
                                  dtype=torch.float64)
    packed[local.classes, 0] = local.count.double()
    packed[local.classes, 1] = local.weight.double()
    packed[local.classes, 2:dim + 2] = local.mean.double()
    packed[local.classes, dim + 2:] = local.covariance.double()
    gathered = [torch.empty_like(packed) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, packed)
    classes = torch.arange(num_classes, device=packed.device)
    pooled = None
    for rank in gathered:
        moments = Moments(classes, rank[:, 0].round().long(), rank[:, 1],
                          rank[:, 2:dim + 2].to(local.mean.dtype),
                          rank[:, dim + 2:].to(local.mean.dtype))
        pooled = moments if pooled is None else merge_moments(pooled, moments)
    seen = pooled.count > 0
    return Moments(classes[seen], pooled.count[seen], pooled.weight[seen],
                   pooled.mean[seen], pooled.covariance[seen])

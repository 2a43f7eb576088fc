"""Semantic directions of class-conditional feature statistics.

ISDA (Wang et al., "Regularizing Deep Networks with Semantic Data
Augmentation", NeurIPS 2019 / T-PAMI 2021, Sec. 3) translates a
feature ``a`` of class ``y`` along ``N(0, lambda Sigma_y)``: the principal
directions of the class covariance are the "semantic directions" it samples
most, with standard deviation ``sqrt(eigenvalue)`` along each. This module
reads those statistics (from an ISDA head's state dict, or estimates them
from features), finds the directions and picks the real samples that show
them. Torch only.
"""
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..core import CovarianceEstimator

# The estimator's buffers inside an ISDA head (isda_mm.engine.head):
# ``<head>.isda.estimator.{mean,covariance,count}``.
ESTIMATOR = 'isda.estimator.'
STAT_KEYS = ('mean', 'covariance', 'count')


@dataclass
class ClassStatistics:
    """Per-class mean, covariance and count, float64 on the CPU.

    Args:
        mean (Tensor): ``(C, A)`` class means.
        covariance (Tensor): ``(C, A, A)`` (full) or ``(C, A)`` (diagonal)
            population covariances.
        count (Tensor): ``(C,)`` samples seen per class.
        source (str): ``'checkpoint'`` or ``'estimated'``.
        prefix (str): State-dict prefix they were read under, or ``''``.
        eigen_cache (dict): :func:`eigen`'s results, by class.
    """
    mean: Tensor
    covariance: Tensor
    count: Tensor
    source: str
    prefix: str = ''
    eigen_cache: dict = field(default_factory=dict, repr=False,
                              compare=False)

    @property
    def kind(self) -> str:
        """``'full'`` or ``'diagonal'``."""
        return 'full' if self.covariance.dim() == 3 else 'diagonal'

    @property
    def num_classes(self) -> int:
        return self.mean.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.mean.shape[1]

    def variances(self, c: int) -> Tensor:
        """The ``(A,)`` per-coordinate variances of class ``c``."""
        cov = self.covariance[c]
        return torch.diagonal(cov) if self.kind == 'full' else cov

    def trace(self, c: int) -> float:
        """Total variance of class ``c`` (the covariance's trace)."""
        return float(self.variances(c).sum())


def find_statistics(state_dict: Mapping[str, Tensor],
                    prefix: Optional[str] = None
                    ) -> Optional[ClassStatistics]:
    """The ISDA statistics held by a model's state dict, if any.

    Args:
        state_dict (Mapping[str, Tensor]): A checkpoint's ``state_dict``.
        prefix (str, optional): Module prefix of the estimator, e.g.
            ``'head.isda.estimator.'``. Defaults to None: the head's own
            (first) estimator, ``head.isda.estimator.`` when present, else
            the first key ending in ``isda.estimator.mean``.

    Returns:
        ClassStatistics or None: None when the state dict has no ISDA
        estimator (a stock model). A packed full covariance (upper
        triangles) is unpacked.
    """
    if prefix is None:
        found = sorted(k[:-len('mean')] for k in state_dict
                       if k.endswith(ESTIMATOR + 'mean'))
        if not found:
            return None
        prefix = ('head.' + ESTIMATOR if 'head.' + ESTIMATOR in found else
                  found[0])
    missing = [prefix + k for k in STAT_KEYS if prefix + k not in state_dict]
    if missing:
        raise ValueError(f'the checkpoint has {prefix}mean but not '
                         f'{missing}; it is not an ISDA estimator state')
    mean, cov, count = (state_dict[prefix + k] for k in STAT_KEYS)
    mean = mean.detach().double().cpu()
    cov = cov.detach().double().cpu()
    num, dim = mean.shape
    if cov.dim() == 2 and cov.shape[1] != dim:  # packed upper triangles
        if cov.shape[1] != dim * (dim + 1) // 2:
            raise ValueError(f'{prefix}covariance has shape '
                             f'{tuple(cov.shape)}, which fits neither '
                             f'({num}, {dim}) nor its packed triangles')
        rows, cols = torch.triu_indices(dim, dim)
        full = cov.new_zeros(num, dim, dim)
        full[:, rows, cols] = cov
        full[:, cols, rows] = cov
        cov = full
    return ClassStatistics(mean, cov, count.detach().long().cpu(),
                           'checkpoint', prefix)


def estimate_statistics(features: Tensor, labels: Tensor,
                        num_classes: int) -> ClassStatistics:
    """Full statistics of features, by the core's estimator (float64).

    Args:
        features (Tensor): ``(N, A)`` features.
        labels (Tensor): ``(N,)`` labels in ``[0, num_classes)``.
        num_classes (int): Number of classes C.

    Returns:
        ClassStatistics: Population mean and covariance of every class
        (zeros for classes without samples), ``source='estimated'``.
    """
    features = features.detach().double().cpu()
    est = CovarianceEstimator(num_classes, features.shape[1], 'full',
                              dtype=torch.float64, sync_ranks=False)
    est.update(features, labels.cpu().long())
    return ClassStatistics(est.mean.clone(), est.covariance.clone(),
                           est.count.clone(), 'estimated')


def eigen(stats: ClassStatistics, c: int) -> Tuple[Tensor, Tensor]:
    """All eigenvalues (descending, clamped at 0) and eigenvectors (rows)
    of class ``c``'s full covariance, float64, computed once per class.

    Each eigenvector is signed so that its largest-magnitude coordinate is
    positive, which makes the result deterministic.
    """
    cache = stats.eigen_cache
    if c not in cache:
        cov = stats.covariance[c].double().cpu()
        values, vectors = torch.linalg.eigh((cov + cov.T) / 2)
        values = values.flip(0).clamp(min=0)
        vectors = vectors.flip(1).T.contiguous()
        peak = vectors.abs().argmax(1)
        sign = torch.sign(vectors.gather(1, peak[:, None]))
        cache[c] = values, vectors * torch.where(sign == 0, 1.0, sign)
    return cache[c]


def top_directions(stats: ClassStatistics, c: int,
                   k: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The ``k`` principal directions of class ``c``'s covariance.

    Full covariance: eigenvectors (float64 ``eigh``) by descending
    eigenvalue, signed as :func:`eigen` does. Diagonal covariance: unit
    vectors of the ``k`` largest-variance coordinates (ties: lower index
    first).

    Args:
        stats (ClassStatistics): The statistics.
        c (int): Class index.
        k (int): Number of directions, ``1 <= k <= A``.

    Returns:
        tuple: ``(k, A)`` unit directions, ``(k,)`` variances along them
        (eigenvalues, clamped at 0) and ``(k,)`` shares of the class's
        total variance (eigenvalue / trace; 0 for a zero covariance).
    """
    dim = stats.feature_dim
    if not 1 <= k <= dim:
        raise ValueError(f'--directions={k} must be between 1 and the '
                         f'feature dimension A={dim}')
    if stats.kind == 'full':
        values, vectors = eigen(stats, c)
        values, vectors = values[:k], vectors[:k]
    else:
        var = stats.covariance[c].double().cpu()
        # Stable descending order: ties keep the lower coordinate first.
        order = torch.sort(-var, stable=True).indices[:k]
        values = var[order].clamp(min=0)
        vectors = torch.zeros(k, dim, dtype=torch.float64)
        vectors[torch.arange(k), order] = 1.0
    total = stats.trace(c)
    shares = values / total if total > 0 else torch.zeros_like(values)
    return vectors, values, shares


def cumulative_shares(stats: ClassStatistics, c: int) -> Tensor:
    """Explained-variance curve of class ``c``: entry ``i`` is the share of
    the total variance in the top ``i + 1`` directions, ``(A,)``."""
    _, _, shares = top_directions(stats, c, stats.feature_dim)
    return shares.cumsum(0)


def order_by_projection(features: Tensor, mean: Tensor, direction: Tensor,
                        num: int) -> Tensor:
    """Samples spread along a direction, from most negative to most
    positive projection.

    Args:
        features (Tensor): ``(n, A)`` features of one class.
        mean (Tensor): ``(A,)`` the class mean.
        direction (Tensor): ``(A,)`` unit direction.
        num (int): Number of samples to pick (at most ``n`` are).

    Returns:
        Tensor: Row indices into ``features`` at evenly spaced quantiles
        of the projection ``(a - mean) . direction`` (the extremes
        included), in increasing projection.
    """
    proj = projections(features, mean, direction)
    order = torch.sort(proj, stable=True).indices
    num = min(num, len(order))
    picks = torch.linspace(0, len(order) - 1, num).round().long()
    return order[picks]


def projections(features: Tensor, mean: Tensor, direction: Tensor) -> Tensor:
    """``(a - mean) . direction`` of each row, float64, ``(n,)``."""
    return (features.double() - mean.double()) @ direction.double()


def augmented_neighbours(features: Tensor, query: int, direction: Tensor,
                         sigma: float,
                         steps: Sequence[float] = (-2, -1, 0, 1, 2)
                         ) -> Tensor:
    """The real samples nearest to a query translated along a direction.

    ISDA's translated feature ``a + t sigma v`` is never decoded into an
    image; its nearest real feature (Euclidean) is the closest picture
    that exists.

    Args:
        features (Tensor): ``(N, A)`` features to search (all classes).
        query (int): Row of the query sample.
        direction (Tensor): ``(A,)`` unit direction ``v``.
        sigma (float): Standard deviation along ``v`` (sqrt of its
            eigenvalue).
        steps (Sequence[float]): Values of ``t``. Defaults to
            ``(-2, -1, 0, 1, 2)``.

    Returns:
        Tensor: ``(len(steps),)`` row indices; for ``t != 0`` never the
        query itself (``t = 0`` gives the query, its own nearest).
    """
    feats = features.double()
    steps_t = torch.as_tensor(list(steps), dtype=torch.float64)
    targets = feats[query] + steps_t[:, None] * sigma * direction.double()
    dist = torch.cdist(targets, feats)
    dist[steps_t != 0, query] = float('inf')
    nearest = dist.argmin(1)
    nearest[steps_t == 0] = query
    return nearest

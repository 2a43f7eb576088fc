"""ISDA loss: statistics update, augmented logits, cross-entropy (Eq. 12)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from .augment import isda_augment
from .estimator import CovarianceEstimator
from .index import samples_last


class ISDALoss(nn.Module):
    """Ties a :class:`CovarianceEstimator` to :func:`isda_augment`.

    Adapters call :meth:`augment` and score its output with their toolkit's
    own loss (class weights, label smoothing, samplers); :meth:`forward` is
    the plain softmax cross-entropy version.

    Args:
        num_classes (int): Number of classes C (rows of the classifier).
        feature_dim (int): Width A of the classifier's input features.
        covariance (str): ``'full'`` or ``'diagonal'``. Defaults to
            ``'full'``.
        ignore_index (int, optional): Label of samples that neither update
            the statistics nor get augmented. Defaults to None.
        sync_ranks (bool): See :class:`CovarianceEstimator`.
            Defaults to True.
        packed (bool): See :class:`CovarianceEstimator`. Defaults to False.
    """

    def __init__(self,
                 num_classes: int,
                 feature_dim: int,
                 covariance: str = 'full',
                 ignore_index: Optional[int] = None,
                 sync_ranks: bool = True,
                 packed: bool = False) -> None:
        super().__init__()
        self.estimator = CovarianceEstimator(
            num_classes,
            feature_dim,
            covariance,
            ignore_index=ignore_index,
            sync_ranks=sync_ranks,
            packed=packed)

    @property
    def ignore_index(self) -> Optional[int]:
        return self.estimator.ignore_index

    def augment(self, features: Tensor, logits: Tensor, labels: Tensor,
                weight: Tensor, ratio: float) -> Tensor:
        """Update the statistics with this batch, then augment its logits.

        The classes of the batch are found once, with one host sync, for
        both steps.

        Args:
            features (Tensor): ``(N, A)`` inputs of the final linear layer,
                or ``(N, A, d1, ...)`` with a sample per position (a
                1 x 1 convolution's input).
            logits (Tensor): ``(N, C)`` (or ``(N, C, d1, ...)``) outputs.
            labels (Tensor): ``(N,)`` (or ``(N, d1, ...)``) integer labels.
            weight (Tensor): ``(C, A)`` its weight.
            ratio (float): lambda.

        Returns:
            Tensor: The augmented logits, shaped as ``logits``.
        """
        est = self.estimator
        est.check_inputs(features, labels)
        index = est.index(samples_last(features.detach()), labels)
        est.update(features, labels, index=index)
        return isda_augment(logits, labels, weight, est, ratio,
                            self.ignore_index, index=index)

    def forward(self,
                features: Tensor,
                logits: Tensor,
                labels: Tensor,
                weight: Tensor,
                ratio: float,
                class_weight: Optional[Tensor] = None,
                reduction: str = 'mean') -> Tensor:
        """Softmax cross-entropy on the augmented logits.

        Arguments as in :meth:`augment`, plus ``class_weight`` (C,) and
        ``reduction`` as in :func:`torch.nn.functional.cross_entropy`.
        """
        augmented = self.augment(features, logits, labels, weight, ratio)
        ignore = -100 if self.ignore_index is None else self.ignore_index
        return F.cross_entropy(
            augmented,
            labels,
            weight=class_weight,
            ignore_index=ignore,
            reduction=reduction)

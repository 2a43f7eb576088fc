"""ISDA loss: statistics update, augmented logits, cross-entropy (Eq. 12)."""
from typing import Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from .augment import (
    check_classifier,
    check_inputs,
    covariance_access,
    isda_augment,
)
from .estimator import CovarianceEstimator
from .index import samples_last
from .soft import isda_augment_soft


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
        # Every argument is checked before the statistics change.
        check_inputs(logits, labels, weight, est, ratio)
        est.check_inputs(features, labels)
        index = est.index(samples_last(features.detach()), labels)
        est.update(features, labels, index=index)
        return isda_augment(logits, labels, weight, est, ratio,
                            self.ignore_index, index=index)

    def augment_soft(
            self,
            features: Tensor,
            logits: Tensor,
            targets: Tensor,
            weight: Tensor,
            ratio: float,
            mixture: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """:meth:`augment` for soft targets (DESIGN.md §7).

        Args:
            features (Tensor): ``(N, A)`` inputs of the final linear layer.
            logits (Tensor): ``(N, C)`` its outputs.
            targets (Tensor): ``(N, C)`` targets the loss scores.
            weight (Tensor): ``(C, A)`` its weight.
            ratio (float): lambda.
            mixture (Tensor, optional): The classes each image is drawn
                from: ``(N,)`` labels or ``(N, C)`` class weights. They
                update the statistics (a mixed image counts ``p_j``
                towards class j) and give the translation's covariance.
                Defaults to None: the targets, normalised.

        Returns:
            tuple[Tensor, Tensor]: The augmented logits and the bound's
            extra term per sample (:func:`isda_augment_soft`).
        """
        check_classifier('isda_augment_soft', logits, weight,
                         *covariance_access(self.estimator)[:2], ratio,
                         targets)
        classes = targets if mixture is None else mixture
        if classes.is_floating_point():
            classes = classes / classes.sum(1, keepdim=True).clamp(min=1e-12)
        self.estimator.update(features, classes)
        return isda_augment_soft(logits, targets, weight, self.estimator,
                                 ratio, mixture)

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
            labels.long(),
            weight=class_weight,
            ignore_index=ignore,
            reduction=reduction)

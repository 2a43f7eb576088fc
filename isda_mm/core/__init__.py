"""Torch-only ISDA: statistics, augmented logits and loss."""
from .augment import isda_augment
from .estimator import CovarianceEstimator
from .loss import ISDALoss

__all__ = ['CovarianceEstimator', 'ISDALoss', 'isda_augment']

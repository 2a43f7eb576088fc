"""Torch-only ISDA: statistics, augmented logits and loss."""
from .augment import isda_augment
from .estimator import CovarianceEstimator, batch_moments, merge_moments
from .loss import ISDALoss

__all__ = [
    'CovarianceEstimator', 'ISDALoss', 'batch_moments', 'isda_augment',
    'merge_moments'
]

"""Torch-only ISDA: statistics, augmented logits and loss."""
from .augment import isda_augment
from .estimator import CovarianceEstimator
from .loss import ISDALoss
from .soft import isda_augment_soft

__all__ = [
    'CovarianceEstimator', 'ISDALoss', 'isda_augment', 'isda_augment_soft'
]

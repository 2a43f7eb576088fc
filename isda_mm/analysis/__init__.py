"""Analysis of trained ISDA models: the semantic directions of the class
covariances that ISDA samples from (Wang et al., "Regularizing Deep
Networks with Semantic Data Augmentation", T-PAMI 2021).

:mod:`.directions` is torch only; :mod:`.features` imports mmpretrain, and
:func:`.report.make_report` imports it when called.
"""
from .directions import (
    ClassStatistics,
    augmented_neighbours,
    cumulative_shares,
    estimate_statistics,
    find_statistics,
    order_by_projection,
    projections,
    top_directions,
)

__all__ = [
    'ClassStatistics', 'augmented_neighbours', 'cumulative_shares',
    'estimate_statistics', 'find_statistics', 'order_by_projection',
    'projections', 'top_directions'
]

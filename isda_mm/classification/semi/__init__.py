"""Semi-supervised ISDA: Mean Teacher (Tarvainen & Valpola, NeurIPS 2017)
with ISDA's bounds on its supervised and consistency terms (Wang et al.,
T-PAMI 2021, Sec. 5, Table 6).

Importing this package registers, in mmpretrain's registries,
``ISDAMeanTeacher`` and ``MultiViewClsDataPreprocessor`` (MODELS),
``SemiSupervisedDataset`` (DATASETS), ``SemiSupervisedBatchSampler``
(DATA_SAMPLERS), ``SemiSupervisedSplitHook`` (HOOKS) and
``MeanTeacherRampLR`` (PARAM_SCHEDULERS).
"""
from .consistency import entropy, isda_consistency, sigmoid_rampup
from .data import SemiSupervisedBatchSampler, SemiSupervisedDataset
from .hooks import SemiSupervisedSplitHook
from .mean_teacher import ISDAMeanTeacher
from .preprocessor import MultiViewClsDataPreprocessor
from .schedule import MeanTeacherRampLR

__all__ = [
    'ISDAMeanTeacher', 'MeanTeacherRampLR', 'MultiViewClsDataPreprocessor',
    'SemiSupervisedBatchSampler', 'SemiSupervisedDataset',
    'SemiSupervisedSplitHook', 'entropy', 'isda_consistency',
    'sigmoid_rampup'
]

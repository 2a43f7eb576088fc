"""Semi-supervised ISDA: the Pi-model, temporal ensembling (Laine & Aila,
ICLR 2017), Mean Teacher (Tarvainen & Valpola, NeurIPS 2017) and VAT
(Miyato et al., T-PAMI 2018), each with ISDA's bounds on its supervised and
consistency terms (Wang et al., T-PAMI 2021, Sec. 5, Table 6; DESIGN.md
Sec. 8). One base, :class:`SemiSupervisedClassifier`, holds the bound, the
ramp, the normalisation and the log; each method makes its target.

Importing this package registers, in mmpretrain's registries,
``ISDAPiModel``, ``ISDATemporalEnsembling``, ``ISDAMeanTeacher``,
``ISDAVAT`` and ``MultiViewClsDataPreprocessor`` (MODELS),
``SemiSupervisedDataset`` (DATASETS), ``SemiSupervisedBatchSampler``
(DATA_SAMPLERS), ``SemiSupervisedHook`` (HOOKS) and ``MeanTeacherRampLR``
(PARAM_SCHEDULERS).
"""
from .base import ConsistencyTarget, SemiSupervisedClassifier
from .consistency import (
    entropy,
    isda_consistency,
    mse_consistency,
    sigmoid_rampup,
)
from .data import SemiSupervisedBatchSampler, SemiSupervisedDataset
from .hooks import SemiSupervisedHook
from .mean_teacher import ISDAMeanTeacher
from .pi_model import ISDAPiModel
from .preprocessor import MultiViewClsDataPreprocessor
from .schedule import MeanTeacherRampLR
from .temporal_ensembling import ISDATemporalEnsembling
from .vat import ISDAVAT

__all__ = [
    'ConsistencyTarget', 'ISDAMeanTeacher', 'ISDAPiModel',
    'ISDATemporalEnsembling', 'ISDAVAT', 'MeanTeacherRampLR',
    'MultiViewClsDataPreprocessor', 'SemiSupervisedBatchSampler',
    'SemiSupervisedClassifier', 'SemiSupervisedDataset',
    'SemiSupervisedHook', 'entropy', 'isda_consistency', 'mse_consistency',
    'sigmoid_rampup'
]

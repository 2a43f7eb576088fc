"""The Pi-model with the ISDA consistency bound.

Laine & Aila, "Temporal Ensembling for Semi-Supervised Learning" (ICLR
2017), Sec. 2.1: every image is evaluated twice by the same network, under
different augmentation, input noise and dropout, and the two predictions
are pulled together. Here the second pass is the target ``p`` (no
gradient) of the KL consistency, trained through ISDA's bound (Wang et
al., T-PAMI 2021, Sec. 5, Table 6; DESIGN.md Sec. 8).
"""
from typing import List

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from .base import ConsistencyTarget, SemiSupervisedClassifier


@MODELS.register_module()
class ISDAPiModel(SemiSupervisedClassifier):
    """Pi-model around an ``ImageClassifier``, with ISDA when its head is
    an ISDA head.

    Training batches hold two views of each image (``MultiView``,
    ``num_views=2``). The student's pass on the first gives the supervised
    loss and the scored logits; a second stochastic pass of the same
    network on the second view (training mode: its own input noise and
    dropout), under ``no_grad``, gives the target ``p``. With ``lambda0 =
    0``, or a stock head, this is the plain Pi-model with the KL
    consistency (or the paper's MSE, ``consistency='mse'``).

    Note:
        Both passes are ordinary training passes, as in the paper: the
        second one also updates BN's running statistics (each step moves
        them twice, by the first view's batch, then the second's). Unlike
        the paper, whose cost back-propagates through both passes, the
        target gets no gradient, as the KL's target in all four methods.

    Args:
        *args, **kwargs: The arguments of
            :class:`~.base.SemiSupervisedClassifier` and of
            ``ImageClassifier``.
    """

    num_views = 2

    def consistency_target(self, views: List[Tensor], logits: Tensor,
                           labels: Tensor,
                           data_samples: List[DataSample]
                           ) -> ConsistencyTarget:
        """The softmax of a second pass of the student on the second
        view."""
        with torch.no_grad():
            second = self.student_logits(views[1])
        return ConsistencyTarget(second.float().softmax(1))

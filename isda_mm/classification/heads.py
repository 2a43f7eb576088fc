"""ISDA for mmpretrain classification heads whose last layer is linear.

``ISDALinearClsHead``, ``ISDAStackedLinearClsHead`` and
``ISDAVisionTransformerClsHead`` are made from the stock heads by
:func:`isda_mm.engine.register_isda_heads`; only ``loss`` differs, so
``predict`` and ``forward`` stay stock (DESIGN.md §5, §6).
"""
from typing import List, Tuple

import torch
from mmpretrain.evaluation import Accuracy
from mmpretrain.models.heads import (
    LinearClsHead,
    StackedLinearClsHead,
    VisionTransformerClsHead,
)
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from ..engine import ISDAHeadMixin, register_isda_heads

# Where each stock head keeps its final nn.Linear, whose input is exactly
# what ``pre_logits`` returns (StackedLinearClsHead's ``fc`` is a block).
FINAL_LINEAR = {
    LinearClsHead: lambda head: head.fc,
    StackedLinearClsHead: lambda head: head.layers[-1].fc,
    VisionTransformerClsHead: lambda head: head.layers.head,
}
SUPPORTED_LOSSES = ('CrossEntropyLoss', 'LabelSmoothLoss')


class ISDAClsHeadMixin(ISDAHeadMixin):
    """Adds ISDA to an mmpretrain head (softmax cross-entropy only).

    Args:
        lambda0 (float): lambda at the end of training. Defaults to 0.5,
            the paper's CIFAR setting.
        covariance (str): ``'full'`` (the paper's CIFAR setting) or
            ``'diagonal'`` (its ImageNet setting). Defaults to ``'full'``.
        lambda_by (str): ``'iter'`` or ``'epoch'`` progress for lambda.
            Defaults to ``'iter'``.
        sync_ranks (bool): Identical statistics on every DDP rank.
            Defaults to True.
        packed_covariance (bool): Store full covariances as triangles.
            Defaults to False.
        *args, **kwargs: Every argument of the stock head.
    """

    def __init__(self,
                 *args,
                 lambda0: float = 0.5,
                 covariance: str = 'full',
                 lambda_by: str = 'iter',
                 sync_ranks: bool = True,
                 packed_covariance: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._check_loss()
        fc = self.final_linear
        self.init_isda(fc.out_features, fc.in_features, lambda0, covariance,
                       lambda_by, sync_ranks=sync_ranks,
                       packed_covariance=packed_covariance)

    @property
    def final_linear(self) -> nn.Linear:
        """The last linear layer, whose input ISDA augments."""
        for stock, layer in FINAL_LINEAR.items():
            if isinstance(self, stock):
                return layer(self)
        raise TypeError(f'{type(self).__name__}: no known final layer')

    def _check_loss(self) -> None:
        loss = self.loss_module
        name = type(self).__name__
        kind = type(loss).__name__
        inner = getattr(loss, 'ce', loss)  # LabelSmoothLoss wraps a CE
        if getattr(inner, 'use_sigmoid', False):
            kind += ' with use_sigmoid=True'
        if kind not in SUPPORTED_LOSSES:
            raise ValueError(
                f'{name}: the ISDA bound is derived for softmax '
                f'cross-entropy, but model.head.loss is {kind}; use one of '
                f'{SUPPORTED_LOSSES} without use_sigmoid, or the stock head '
                f'type {name[4:]!r}')
        if kind == 'CrossEntropyLoss' and loss.use_soft:
            raise ValueError(
                f'{name}: soft targets (model.head.loss.use_soft=True) are '
                'not supported by ISDA; set use_soft=False and remove the '
                'batch augments (Mixup, CutMix) that need it')

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """The stock loss on ISDA-augmented logits, plus ISDA log entries.

        Accuracy (``cal_acc``) is measured on the plain logits, as at test
        time.
        """
        name = type(self).__name__
        if 'gt_score' in data_samples[0]:
            raise ValueError(
                f'{name}: the batch carries soft labels (gt_score), as '
                'Mixup/CutMix batch augments make; ISDA needs hard labels. '
                'Remove model.data_preprocessor.batch_augments or use the '
                f'stock head {name[4:]!r}')
        fc = self.final_linear
        features = self.pre_logits(feats)
        if features.dim() != 2 or features.shape[1] != fc.in_features:
            key = ('hidden_dim' if fc.in_features != self.in_channels else
                   'in_channels')
            raise ValueError(
                f'{name}: the final linear layer takes {fc.in_features} '
                f'channels but the features are {tuple(features.shape)}; '
                f'set model.head.{key}={features.shape[-1]}')
        logits = fc(features)
        labels = torch.cat([s.gt_label for s in data_samples])
        augmented = self.isda_augment(features, logits, labels, fc.weight)
        # ClsHead._get_loss, with the accuracy of the plain logits.
        losses = dict(loss=self.loss_module(
            augmented, labels, avg_factor=augmented.size(0), **kwargs))
        if self.cal_acc:
            acc = Accuracy.calculate(logits, labels, topk=self.topk)
            losses.update(
                {f'accuracy_top-{k}': a
                 for k, a in zip(self.topk, acc)})
        losses.update(self.isda_log_vars())
        return losses


register_isda_heads(ISDAClsHeadMixin, FINAL_LINEAR, MODELS)


def check_config(cfg) -> None:
    """Refuse, before anything is built, batch augments that make soft labels.

    Mixup and CutMix give every sample a mixed ``gt_score``; the ISDA bound
    is for hard labels, so an ISDA head with them is a config error.
    ``tools/train.py`` calls this; the heads also refuse soft labels at the
    first batch, for other tools.
    """
    model = cfg.get('model') or {}
    head = model.get('head')
    if not isinstance(head, dict) or not str(head.get('type',
                                                      '')).startswith('ISDA'):
        return
    for key, pre in (('model.data_preprocessor',
                      model.get('data_preprocessor')),
                     ('data_preprocessor', cfg.get('data_preprocessor'))):
        if isinstance(pre, dict) and pre.get('batch_augments'):
            raise ValueError(
                f"{head['type']}: {key}.batch_augments (Mixup, CutMix) makes "
                'soft labels, which the ISDA bound does not cover; set '
                f'{key}.batch_augments=None or use the stock head')

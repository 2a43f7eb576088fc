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
from mmpretrain.models.losses import LabelSmoothLoss
from mmpretrain.models.losses.utils import weight_reduce_loss
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
    """Adds ISDA to an mmpretrain head (softmax cross-entropy, hard or soft
    targets).

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
        if getattr(_cross_entropy(loss), 'use_sigmoid', False):
            kind += ' with use_sigmoid=True'
        if kind not in SUPPORTED_LOSSES:
            raise ValueError(
                f'{name}: the ISDA bound is derived for softmax '
                f'cross-entropy, but model.head.loss is {kind}; use one of '
                f'{SUPPORTED_LOSSES} without use_sigmoid, or the stock head '
                f'type {name[4:]!r}')

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """The stock loss on ISDA-augmented logits, plus ISDA log entries.

        Hard labels scored by a cross-entropy get today's ISDA. Soft
        targets (``gt_score`` from Mixup/CutMix, and label smoothing, which
        scores a smoothed target) get the soft-target bound (DESIGN.md §7):
        the loss module's own score of the augmented logits plus the
        bound's extra term, reduced as the module reduces. Accuracy
        (``cal_acc``) is measured on the plain logits, as at test time.
        """
        name = type(self).__name__
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
        mixed = 'gt_score' in data_samples[0]
        # What ClsHead._get_loss gives the loss module.
        target = (torch.stack([s.gt_score for s in data_samples])
                  if mixed else labels)
        if mixed or isinstance(self.loss_module, LabelSmoothLoss):
            scored = self._scored_target(target, logits.shape[1])
            augmented, extra = self.isda_augment_soft(
                features, logits, scored, fc.weight,
                target if mixed else labels)
            loss = self.loss_module(
                augmented, target, avg_factor=augmented.size(0), **kwargs)
            loss = loss + self._reduce_as_loss(extra, **kwargs)
        else:
            augmented = self.isda_augment(features, logits, labels, fc.weight)
            loss = self.loss_module(
                augmented, labels, avg_factor=augmented.size(0), **kwargs)
        losses = dict(loss=loss)
        if self.cal_acc:
            if mixed:
                raise ValueError(
                    f'{name}: accuracy is pointless on mixed targets (Mixup, '
                    'CutMix); set model.head.cal_acc=False')
            acc = Accuracy.calculate(logits, labels, topk=self.topk)
            losses.update(
                {f'accuracy_top-{k}': a
                 for k, a in zip(self.topk, acc)})
        losses.update(self.isda_log_vars())
        return losses

    def _scored_target(self, target: torch.Tensor,
                       num_classes: int) -> torch.Tensor:
        """``(N, C)`` target the loss module scores, times its class
        weights: what the bound needs. Label smoothing's target comes from
        the module's own code."""
        loss = self.loss_module
        if isinstance(loss, LabelSmoothLoss):
            if loss.num_classes is None:  # as its forward sets it
                loss.num_classes = num_classes
            target = loss.smooth_label(
                loss.generate_one_hot_like_label(target))
        class_weight = _cross_entropy(loss).class_weight
        if class_weight is not None:
            target = target * target.new_tensor(class_weight)
        return target.float()

    def _reduce_as_loss(self, per_sample: torch.Tensor, weight=None,
                        reduction_override=None, **kwargs) -> torch.Tensor:
        """Weight, reduce and scale a per-sample term as the loss module
        does its per-sample cross-entropy (``avg_factor`` = batch size)."""
        loss, inner = self.loss_module, _cross_entropy(self.loss_module)
        scale = loss.loss_weight * (inner.loss_weight if inner is not loss
                                    else 1)
        return scale * weight_reduce_loss(
            per_sample,
            weight=None if weight is None else weight.float(),
            reduction=reduction_override or inner.reduction,
            avg_factor=per_sample.size(0))


def _cross_entropy(loss: nn.Module) -> nn.Module:
    """The CrossEntropyLoss that scores: the module, or the one
    LabelSmoothLoss wraps."""
    return getattr(loss, 'ce', loss)


register_isda_heads(ISDAClsHeadMixin, FINAL_LINEAR, MODELS)


def check_config(cfg) -> None:
    """Refuse, before anything is built, an ISDA head whose loss has no
    ISDA bound: a sigmoid (binary or multi-label) cross-entropy.

    Mixup, CutMix (``model.train_cfg.augments`` or a data preprocessor's
    ``batch_augments``) and label smoothing are bounded (DESIGN.md §7).
    ``tools/train.py`` calls this; the heads refuse the same losses when
    built, for other tools.
    """
    model = cfg.get('model') or {}
    head = model.get('head')
    if not isinstance(head, dict) or not str(head.get('type',
                                                      '')).startswith('ISDA'):
        return
    loss = head.get('loss') or {}
    sigmoid = loss.get('use_sigmoid')
    if sigmoid is None and loss.get('type') == 'LabelSmoothLoss' \
            and loss.get('mode') == 'multi_label':
        key, sigmoid = 'model.head.loss.mode', True
    else:
        key = 'model.head.loss.use_sigmoid'
    if sigmoid:
        raise ValueError(
            f"{head['type']}: {key} makes a sigmoid cross-entropy, which has "
            'no ISDA bound (it is derived for softmax cross-entropy); use a '
            'softmax loss (CrossEntropyLoss, LabelSmoothLoss) or the stock '
            'head')

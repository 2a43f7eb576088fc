"""ISDA for mmpretrain classification heads whose classifier is linear.

:func:`isda_mm.engine.register_isda_heads` makes ``ISDA<Head>`` from each
stock head of :data:`FINAL_LINEAR`; only ``loss`` differs, so ``predict``
and ``forward`` stay stock (DESIGN.md §5, §6). The classification heads
without an ISDA bound are registered too, as entries that refuse to be
built and say why (:data:`REFUSED_HEADS`).
"""
import warnings
from operator import itemgetter
from typing import List, Tuple

import torch
from mmpretrain.evaluation import Accuracy
from mmpretrain.models.heads import (
    ConformerHead,
    DeiTClsHead,
    EfficientFormerClsHead,
    LeViTClsHead,
    LinearClsHead,
    StackedLinearClsHead,
    VigClsHead,
    VisionTransformerClsHead,
)
from mmpretrain.models.losses import LabelSmoothLoss
from mmpretrain.models.losses.utils import weight_reduce_loss
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from ..engine import ISDAHeadMixin, register_isda_heads, register_refusals

# Each stock head's softmax classifiers: its final nn.Linear layers, each
# with the function that gives the layer's input (the feature ISDA
# translates) from what ``pre_logits`` returns; None: that output itself.
FINAL_LINEAR = {
    LinearClsHead: lambda head: [(head.fc, None)],
    # StackedLinearClsHead's ``fc`` is a block.
    StackedLinearClsHead: lambda head: [(head.layers[-1].fc, None)],
    VisionTransformerClsHead: lambda head: [(head.layers.head, None)],
    # pre_logits: (class token, distillation token); see ISDAClsHeadMixin.
    DeiTClsHead: lambda head: [(head.layers.head, itemgetter(0))],
    # BatchNorm1d, then the linear layer.
    LeViTClsHead: lambda head: [(head.head.linear, head.head.bn)],
    EfficientFormerClsHead: lambda head: [(head.head, None)],
    # pre_logits: (conv feature, class token), one classifier each.
    ConformerHead: lambda head: [(head.conv_cls_head, itemgetter(0)),
                                 (head.trans_cls_head, itemgetter(1))],
    VigClsHead: lambda head: [(head.fc2, None)],
}
SUPPORTED_HEADS = tuple(head.__name__ for head in FINAL_LINEAR)
SUPPORTED_LOSSES = ('CrossEntropyLoss', 'LabelSmoothLoss')
# Heads mmpretrain cannot train with distillation=True (their training step
# raises NotImplementedError), by the attribute that keeps the flag.
DISTILLATION_FLAG = {LeViTClsHead: 'distillation',
                     EfficientFormerClsHead: 'dist'}
_SIGMOID = ('is a multi-label head scored by a sigmoid cross-entropy, which '
            'has no ISDA bound (it is derived for the softmax cross-entropy '
            'of a linear classifier); use the stock head, or '
            'ISDALinearClsHead if every image has one label')
# Classification heads without an ISDA bound, and why.
REFUSED_HEADS = {
    'ClsHead': 'has no classifier layer (its input already is the logits, '
               'the backbone classifies), so there is no feature for ISDA '
               'to translate; build the backbone without its classifier '
               'and use ISDALinearClsHead',
    'MultiLabelClsHead': _SIGMOID,
    'MultiLabelLinearClsHead': _SIGMOID,
    'CSRAClsHead': _SIGMOID,
    'ArcFaceClsHead': 'scores the cosine between normalised features and '
                      'class weights with an angular margin, which is not '
                      'a linear classifier and has no ISDA bound; use the '
                      'stock head, or ISDALinearClsHead',
}


class _Classifier(ISDAHeadMixin, nn.Module):
    """The ISDA statistics and schedule of a head's further classifier
    (ConformerHead's transformer branch)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self.init_isda(*args, **kwargs)


class ISDAClsHeadMixin(ISDAHeadMixin):
    """Adds ISDA to an mmpretrain head (softmax cross-entropy, hard or soft
    targets).

    Every classifier the stock loss scores gets ISDA on its input, with
    statistics of its own: ConformerHead's convolution and transformer
    branches each have a cross-entropy on their own feature, and the bound
    holds term by term (the second's state is ``isda_others.0``). The log
    shows the first classifier's statistics.

    DeiTClsHead: mmpretrain 1.2.0 has no DeiT teacher; its training loss
    (after warning that distilled DeiT cannot be trained) is the
    cross-entropy of the mean of the class token's and the distillation
    token's logits against the labels. ISDA translates the class token (its
    classifier weighs ``W / 2`` in that mean) and scores the distillation
    token's half as stock: that token is meant to learn a teacher's hard
    predictions, so statistics by label would not describe it, and its
    classifier would need statistics of its own for a training mmpretrain
    does not support. LeViTClsHead and EfficientFormerClsHead cannot be
    trained in mmpretrain with ``distillation=True`` and are refused; with
    ``distillation=False`` each is one linear classifier.

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
        self._check_trainable()
        self._check_loss()
        first, *others = [fc for fc, _ in self._final_layers()]
        isda = dict(covariance=covariance, lambda_by=lambda_by,
                    sync_ranks=sync_ranks,
                    packed_covariance=packed_covariance)
        self.init_isda(first.out_features, first.in_features, lambda0,
                       **isda)
        self.isda_others = nn.ModuleList(
            _Classifier(fc.out_features, fc.in_features, lambda0, **isda)
            for fc in others)

    def _final_layers(self) -> list:
        for stock in type(self).__mro__:
            if stock in FINAL_LINEAR:
                return FINAL_LINEAR[stock](self)
        raise TypeError(f'{type(self).__name__}: no known final layer')

    @property
    def final_linear(self) -> nn.Linear:
        """The (first) final linear layer, whose input ISDA augments."""
        return self._final_layers()[0][0]

    def _classifiers(self, x) -> List[Tuple[torch.Tensor, ...]]:
        """``(features, logits, weight)`` of each classifier, from what
        ``pre_logits`` returns: the features ISDA translates, the logits
        the stock loss scores and their derivative by the features."""
        out = []
        for i, (fc, take) in enumerate(self._final_layers()):
            features = x if take is None else take(x)
            if features.dim() != 2 or features.shape[1] != fc.in_features:
                key = 'in_channels'
                if isinstance(getattr(self, key, None), (list, tuple)):
                    key += f'[{i}]'
                elif fc.in_features != getattr(self, key, None):
                    key = 'hidden_dim'
                raise ValueError(
                    f'{type(self).__name__}: the final linear layer takes '
                    f'{fc.in_features} channels but the features are '
                    f'{tuple(features.shape)}; set model.head.{key}='
                    f'{features.shape[-1]}')
            out.append((features, fc(features), fc.weight))
        if isinstance(self, DeiTClsHead):  # the mean of both tokens' logits
            if self.training:  # as the stock head warns
                warnings.warn(f'{type(self).__name__}: mmpretrain has no '
                              'DeiT teacher; the distillation token is '
                              'trained on the labels, as by DeiTClsHead')
            (features, logits, weight), = out
            logits = (logits + self.layers.head_dist(x[1])) / 2
            out = [(features, logits, weight / 2)]
        return out

    def _check_trainable(self) -> None:
        name = type(self).__name__
        for stock, flag in DISTILLATION_FLAG.items():
            if isinstance(self, stock) and getattr(self, flag):
                raise ValueError(
                    f'{name}: mmpretrain cannot train {stock.__name__} with '
                    'distillation=True (its training step raises '
                    'NotImplementedError), so neither can ISDA; set '
                    'model.head.distillation=False')

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
        bound's extra term, reduced as the module reduces. A head with two
        classifiers sums their losses, as the stock one does. Accuracy
        (``cal_acc``) is measured on the plain logits, as at test time.
        """
        return self.loss_by_classifiers(
            self._classifiers(self.pre_logits(feats)), data_samples,
            **kwargs)

    def loss_by_classifiers(self, classifiers: List[Tuple[torch.Tensor,
                                                          ...]],
                            data_samples: List[DataSample],
                            **kwargs) -> dict:
        """:meth:`loss` from the classifiers' outputs already computed.

        A model that needs the logits for more than the supervised loss (a
        semi-supervised consistency) runs the head once and hands its
        :meth:`_classifiers` here, rows chosen as ``data_samples``: the
        head's dropout and BN then see each image once per step.

        Args:
            classifiers (list[tuple]): ``(features, logits, weight)`` of
                each classifier, as :meth:`_classifiers` gives them.
            data_samples (list[DataSample]): The samples of their rows.
            **kwargs: Passed to the loss module, as by :meth:`loss`.

        Returns:
            dict: As :meth:`loss`.
        """
        name = type(self).__name__
        labels = torch.cat([s.gt_label for s in data_samples])
        mixed = 'gt_score' in data_samples[0]
        # What ClsHead._get_loss gives the loss module.
        target = (torch.stack([s.gt_score for s in data_samples])
                  if mixed else labels)
        soft = mixed or isinstance(self.loss_module, LabelSmoothLoss)
        if soft:
            scored = self._scored_target(target, classifiers[0][1].shape[1])
        loss = 0
        for owner, (features, logits, weight) in zip(
                [self, *self.isda_others], classifiers):
            if soft:
                augmented, extra = owner.isda_augment_soft(
                    features, logits, scored, weight,
                    target if mixed else labels)
                loss = loss + self.loss_module(
                    augmented, target, avg_factor=augmented.size(0),
                    **kwargs) + self._reduce_as_loss(extra, **kwargs)
            else:
                augmented = owner.isda_augment(features, logits, labels,
                                               weight)
                loss = loss + self.loss_module(
                    augmented, labels, avg_factor=augmented.size(0),
                    **kwargs)
        losses = dict(loss=loss)
        if self.cal_acc:
            if mixed:
                raise ValueError(
                    f'{name}: accuracy is pointless on mixed targets (Mixup, '
                    'CutMix); set model.head.cal_acc=False')
            plain = sum(logits for _, logits, _ in classifiers)
            acc = Accuracy.calculate(plain, labels, topk=self.topk)
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
register_refusals(
    MODELS, {name: f'{name} {why}' for name, why in REFUSED_HEADS.items()})


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

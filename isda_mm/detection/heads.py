"""ISDA for the classification branch of mmdet's two-stage RoI bbox heads.

The paper (T-PAMI 2021) pre-trains its COCO detectors' backbones with ISDA;
ISDA inside the detector was asked for by users and is new here. Each
sampled RoI is a sample of its class; the augmented logits go through the
head's own ``loss_cls`` with the sampler's label weights, and box
regression is untouched.

The features that enter ``fc_cls`` are read by a forward hook: the RoI head
runs ``forward`` before it calls ``loss`` (``StandardRoIHead.bbox_loss``,
``CascadeRoIHead`` per stage, ``PISARoIHead`` directly), so the hook keeps
the last training forward's features and logits, and ``loss`` augments
them when it is handed those very logits. ``forward``, ``predict`` and
``refine_bboxes`` (cascade) see the plain logits.

``SCNetBBoxHead`` and ``SABLHead`` keep this layout (SABL's bucketing box
branch is stock); mmdet's other bbox, dense and mask heads are refused when
built, with the reason (``refused.py``).
"""
from typing import Optional

import torch
from mmdet.models.losses import accuracy
from mmdet.models.roi_heads import bbox_heads
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..engine import ISDAHeadMixin, register_isda_heads, register_refusals
from .refused import REFUSED_HEADS

# Heads whose class logits are ``fc_cls`` applied to per-RoI features.
SUPPORTED_HEADS = ('BBoxHead', 'ConvFCBBoxHead', 'Shared2FCBBoxHead',
                   'Shared4Conv1FCBBoxHead', 'DoubleConvFCBBoxHead',
                   'SCNetBBoxHead', 'SABLHead')
BACKGROUND_MODES = ('exclude', 'augment')
# Label of RoIs that take no part in ISDA (mmdet labels are >= 0).
_SKIP = -1


class ISDABBoxHeadMixin(ISDAHeadMixin):
    """Adds ISDA to an mmdet bbox head (softmax cross-entropy only).

    Args:
        lambda0 (float): lambda at the end of training. No setting was
            published for detector heads; 0.5 is the paper's most cautious
            value (CIFAR). Defaults to 0.5.
        covariance (str): ``'diagonal'`` or ``'full'``. Defaults to
            ``'diagonal'`` (81 classes x 1024 features: 0.3 MB, against
            340 MB for full covariance).
        background (str): ``'exclude'``: background RoIs neither update
            the statistics nor get augmented (their class is "everything
            else", not one object whose semantic directions the
            covariance could capture); foreground logits still get the
            term for the background class. ``'augment'``: background is a
            class like any other, with its own statistics. Defaults to
            ``'exclude'``.
        lambda_by (str): Progress unit of lambda. Defaults to ``'iter'``.
        sync_ranks (bool): Identical statistics on every DDP rank.
            Defaults to True.
        packed_covariance (bool): Store full covariances as triangles.
            Defaults to False.
        *args, **kwargs: Every argument of the stock head.

    Note:
        RoIs whose label weight is 0 take no part in ISDA; the others count
        once each in the statistics, whatever their weight, and their
        weights reach ``loss_cls`` unchanged.
    """

    def __init__(self,
                 *args,
                 lambda0: float = 0.5,
                 covariance: str = 'diagonal',
                 background: str = 'exclude',
                 lambda_by: str = 'iter',
                 sync_ranks: bool = True,
                 packed_covariance: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        if background not in BACKGROUND_MODES:
            raise ValueError(f'{name}: background must be one of '
                             f'{BACKGROUND_MODES}, got {background!r}')
        self._check_classifier()
        self.background = background
        self.init_isda(self.fc_cls.out_features, self.fc_cls.in_features,
                       lambda0, covariance, lambda_by, ignore_index=_SKIP,
                       sync_ranks=sync_ranks,
                       packed_covariance=packed_covariance)
        self._isda_seen = None
        self.fc_cls.register_forward_hook(self._keep_classifier_io)

    def _check_classifier(self) -> None:
        name = type(self).__name__
        # SABLHead skips BBoxHead.__init__ (no with_cls); it always has fc_cls.
        if not getattr(self, 'with_cls', True):
            raise ValueError(f'{name}: with_cls=False leaves no classifier '
                             'to augment; use the stock head')
        loss = self.loss_cls
        kind = type(loss).__name__
        if getattr(loss, 'use_sigmoid', False) or getattr(
                loss, 'use_mask', False):
            kind += ' with use_sigmoid or use_mask'
        # Both faults in one sentence: Seesaw configs have both.
        faults, fixes = [], []
        if kind != 'CrossEntropyLoss':
            faults.append(f'loss_cls is {kind}')
            fixes.append("loss_cls=dict(type='CrossEntropyLoss', "
                         'use_sigmoid=False)')
        if type(self.fc_cls) is not nn.Linear:
            # NormedLinear (cosine) divides by the feature's norm.
            faults.append('cls_predictor_cfg builds '
                          f'{type(self.fc_cls).__name__}, whose logits are '
                          'not a plain linear map of the feature')
            fixes.append("cls_predictor_cfg=dict(type='Linear')")
        if faults:
            raise ValueError(
                f'{name}: the ISDA bound is derived for the softmax '
                'cross-entropy of a plain linear classifier, but '
                f"{' and '.join(faults)}; set {' and '.join(fixes)}, or use "
                f'the stock head {name[4:]!r}')

    def _keep_classifier_io(self, module: nn.Module, args: tuple,
                            output: Tensor) -> None:
        # Only training forwards feed a loss; inference keeps nothing.
        self._isda_seen = (args[0], output) if self.training else None

    def loss(self,
             cls_score: Tensor,
             bbox_pred: Tensor,
             rois: Tensor,
             labels: Tensor,
             label_weights: Tensor,
             bbox_targets: Tensor,
             bbox_weights: Tensor,
             reduction_override: Optional[str] = None) -> dict:
        """The stock losses with ISDA-augmented class logits, plus ISDA
        entries; ``acc`` is measured on the plain logits."""
        seen, self._isda_seen = self._isda_seen, None
        if cls_score is None:
            return super().loss(cls_score, bbox_pred, rois, labels,
                                label_weights, bbox_targets, bbox_weights,
                                reduction_override)
        if seen is None or seen[1] is not cls_score:
            raise RuntimeError(
                f'{type(self).__name__}: loss got class logits that are not '
                'the output of its last training forward, so the features '
                'that produced them are unknown; call the head (or its '
                'RoI head) on the same RoIs right before loss')
        # Masks, not boolean indexing: no host sync.
        take = label_weights > 0
        if self.background == 'exclude':
            take &= labels != self.num_classes
        augmented = self.isda_augment(seen[0], cls_score,
                                      torch.where(take, labels, _SKIP),
                                      self.fc_cls.weight)
        # BBoxHead.loss's classification part, with the accuracy of the
        # plain logits; its box part is stock.
        avg_factor = max(torch.sum(label_weights > 0).float().item(), 1.)
        losses = {}
        if augmented.numel() > 0:
            loss_cls = self.loss_cls(augmented, labels, label_weights,
                                     avg_factor=avg_factor,
                                     reduction_override=reduction_override)
            losses['loss_cls'] = loss_cls
            losses['acc'] = accuracy(cls_score, labels)
        losses.update(
            super().loss(None, bbox_pred, rois, labels, label_weights,
                         bbox_targets, bbox_weights, reduction_override))
        losses.update(self.isda_log_vars())
        return losses


register_isda_heads(ISDABBoxHeadMixin,
                    [getattr(bbox_heads, name) for name in SUPPORTED_HEADS],
                    MODELS)
register_refusals(MODELS, REFUSED_HEADS)

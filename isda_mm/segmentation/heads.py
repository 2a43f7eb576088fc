"""ISDA for mmseg decode heads whose classifiers are linear (1x1 convs).

Every pixel (or PointRend point) that a classifier scores is a sample
(T-PAMI 2021, Sec. 5.3): labels reach the classifier's resolution by
nearest sampling, ignored pixels neither update the statistics nor get
augmented, and the augmented low-resolution logits then go through the
head's own loss path (resize, sampler such as OHEM, losses, class
weights, ignore index), exactly as the stock head scores its logits.

While ``loss`` runs, forward hooks keep what each classifier saw and
returned; where the head's loss path scores a kept output, ISDA augments
it, with that classifier's own statistics. ``forward`` and ``predict``
stay stock. Heads ISDA cannot bound are refused in :mod:`.refused`.
"""
from contextlib import contextmanager
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.models import decode_heads
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.point_head import point_sample
from mmseg.models.losses import BoundaryLoss, CrossEntropyLoss, accuracy
from mmseg.models.losses.ohem_cross_entropy_loss import OhemCrossEntropy
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..core import ISDALoss
from ..engine import ISDAHeadMixin, isda_lambda, register_isda_heads

# Heads whose loss scores ``forward``'s output with the base loss_by_feat:
# those whose forward ends in ``return self.cls_seg(x)`` (mmseg 1.2.2),
# and OCRNet's cascade stage.
SUPPORTED_HEADS = (
    'ANNHead', 'APCHead', 'ASPPHead', 'CCHead', 'DMHead', 'DNLHead',
    'DPTHead', 'DepthwiseSeparableASPPHead', 'DepthwiseSeparableFCNHead',
    'EMAHead', 'FCNHead', 'FPNHead', 'GCHead', 'ISAHead', 'LRASPPHead',
    'LightHamHead', 'NLHead', 'PSAHead', 'PSPHead', 'SETRMLAHead',
    'SETRUPHead', 'SegformerHead', 'UPerHead', 'OCRHead')
# Heads with their own loss_by_feat: each linear classifier (the first one's
# statistics are ``isda``, the others' ``isda_branches``) and the accuracy
# entry the stock head computes from its logits.
OWN_SCORING_HEADS = {
    'EncHead': {'conv_seg': 'acc_seg'},
    'DAHead': {'conv_seg': 'pam_cam.acc_seg', 'pam_conv_seg': 'pam.acc_seg',
               'cam_conv_seg': 'cam.acc_seg'},
    'DDRHead': {'conv_seg': 'acc_seg', 'aux_cls_seg': None},
    'PIDHead': {'conv_seg': 'acc_seg', 'p_cls_seg': None},
    'PointHead': {'fc_seg': 'acc_point'},
}


def is_softmax_ce(loss: nn.Module) -> bool:
    """Whether ``loss`` is a softmax cross-entropy, the loss ISDA bounds
    (OHEM keeps a subset of pixels, each scored by its bound)."""
    if isinstance(loss, CrossEntropyLoss):
        return not (loss.use_sigmoid or loss.use_mask)
    return isinstance(loss, OhemCrossEntropy)


def _describe(loss: nn.Module) -> str:
    if isinstance(loss, CrossEntropyLoss) and not is_softmax_ce(loss):
        return 'CrossEntropyLoss with use_sigmoid or use_mask'
    return type(loss).__name__


class ISDADecodeHeadMixin(ISDAHeadMixin):
    """Adds ISDA to an mmseg decode head (softmax cross-entropy terms).

    ``loss_decode`` may list other losses (Dice, Lovasz, ...) beside a
    softmax cross-entropy: ISDA's bound replaces the cross-entropy terms
    only, so those get the augmented logits and the others the plain ones.

    Args:
        lambda0 (float): lambda at the end of training. Defaults to 7.5,
            the paper's Cityscapes setting.
        covariance (str): ``'diagonal'`` (the paper's setting) or
            ``'full'``. Defaults to ``'diagonal'``.
        lambda_by (str): Progress unit of lambda. Defaults to ``'iter'``
            (mmseg trains by iterations).
        sync_ranks (bool): Identical statistics on every DDP rank.
            Defaults to True.
        packed_covariance (bool): Store full covariances as triangles.
            Defaults to False.
        *args, **kwargs: Every argument of the stock head.
    """
    # Classifier -> the accuracy entry of its logits; set per head class.
    isda_classifiers: Dict[str, Optional[str]] = {'conv_seg': 'acc_seg'}

    def __init__(self,
                 *args,
                 lambda0: float = 7.5,
                 covariance: str = 'diagonal',
                 lambda_by: str = 'iter',
                 sync_ranks: bool = True,
                 packed_covariance: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        if self.out_channels == 1:
            raise ValueError(
                f'{name}: out_channels=1 makes a sigmoid binary head, but '
                'the ISDA bound is derived for softmax cross-entropy; set '
                'out_channels=num_classes (2) or use the stock head '
                f'{name[4:]!r}')
        losses = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        self._check_losses(name, losses)
        main, *branches = self.isda_classifiers
        settings = dict(covariance=covariance, sync_ranks=sync_ranks,
                        ignore_index=self.ignore_index)
        self.init_isda(*getattr(self, main).weight.shape[:2], lambda0,
                       lambda_by=lambda_by,
                       packed_covariance=packed_covariance, **settings)
        self.isda_branches = nn.ModuleDict({
            branch: ISDALoss(*getattr(self, branch).weight.shape[:2],
                             packed=packed_covariance, **settings)
            for branch in branches})
        self._isda_seen = None  # the classifiers' inputs and outputs

    def _check_losses(self, name: str, losses) -> None:
        if not any(is_softmax_ce(loss) for loss in losses):
            kinds = ', '.join(_describe(loss) for loss in losses)
            raise ValueError(
                f'{name}: the ISDA bound is derived for softmax '
                f'cross-entropy, but loss_decode holds {kinds}; add '
                'CrossEntropyLoss(use_sigmoid=False) or use the stock head '
                f'{name[4:]!r}')

    @contextmanager
    def _isda_capturing(self):
        """Keep each classifier's input and output while the body runs."""
        seen = self._isda_seen = {}

        def keeper(name):
            def keep(module, args, output):
                seen[name] = (args[0], output)
            return keep

        handles = [getattr(self, name).register_forward_hook(keeper(name))
                   for name in self.isda_classifiers]
        try:
            yield seen
        finally:
            for handle in handles:
                handle.remove()
            self._isda_seen = None

    def loss(self, *args, **kwargs) -> dict:
        """The stock ``loss`` (any signature: cascade, points) with
        ISDA-augmented logits, plus ISDA entries; accuracies are measured
        on the plain logits, as at test time."""
        self._isda_ratio = isda_lambda(self.lambda0, self.lambda_by)
        with self._isda_capturing() as seen:
            losses = super().loss(*args, **kwargs)
            if seen:
                raise TypeError(
                    f'{type(self).__name__}: the loss did not score the '
                    f'output of {", ".join(seen)} as forward returned it, '
                    'so ISDA cannot augment those logits')
        losses.update(self.isda_log_vars())
        for name, branch in self.isda_branches.items():
            losses[f'isda_cov_trace.{name}'] = \
                branch.estimator.summary()['mean_trace']
        return losses

    def _isda_augment(self, logits: Tensor,
                      labels: Tensor) -> Tuple[Tensor, Optional[str]]:
        """For a classifier's kept output: ``logits`` augmented with that
        classifier's statistics, updated with ``labels`` ((N, 1, *size), as
        the stock head scores them), and its name; else ``logits``, None."""
        for name, (features, output) in self._isda_seen.items():
            if output is logits:
                break
        else:
            return logits, None
        del self._isda_seen[name]  # its samples count once
        # Nearest sampling keeps labels (and the ignore index) exact.
        small = F.interpolate(labels.float(), size=logits.shape[2:],
                              mode='nearest')[:, 0].long()
        isda = self.isda_branches[name] if name in self.isda_branches \
            else self.isda
        weight = getattr(self, name).weight.flatten(1)
        return isda.augment(features, logits, small, weight,
                            self._isda_ratio), name

    def _plain_accuracy(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The stock head's accuracy entry, on the plain logits."""
        with torch.no_grad():
            if logits.shape[2:] != labels.shape[2:]:
                logits = resize(logits, size=labels.shape[2:],
                                mode='bilinear',
                                align_corners=self.align_corners)
            return accuracy(logits, labels[:, 0],
                            ignore_index=self.ignore_index)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples) -> dict:
        """``BaseDecodeHead.loss_by_feat`` on the augmented logits for the
        cross-entropy terms (plain ones for other losses and ``acc_seg``);
        stock when called outside ``loss``."""
        if self._isda_seen is None:
            return super().loss_by_feat(seg_logits, batch_data_samples)
        labels = self._stack_batch_gt(batch_data_samples)
        augmented, name = self._isda_augment(seg_logits, labels)
        if name is None:
            raise TypeError(
                f'{type(self).__name__}: forward does not return the output '
                'of conv_seg unchanged, so ISDA cannot augment its logits')
        size = labels.shape[2:]
        seg_logits_aug = resize(augmented, size=size, mode='bilinear',
                                align_corners=self.align_corners)
        weight = None
        if self.sampler is not None:
            weight = self.sampler.sample(seg_logits_aug, labels)
        loss_decode = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        plain = None
        if not all(is_softmax_ce(loss) for loss in loss_decode):
            plain = resize(seg_logits, size=size, mode='bilinear',
                           align_corners=self.align_corners)
        losses = {}
        for loss in loss_decode:
            value = loss(seg_logits_aug if is_softmax_ce(loss) else plain,
                         labels[:, 0], weight=weight,
                         ignore_index=self.ignore_index)
            key = loss.loss_name
            losses[key] = losses[key] + value if key in losses else value
        losses['acc_seg'] = self._plain_accuracy(
            seg_logits if plain is None else plain.detach(), labels)
        return losses


class ISDAOwnScoringHeadMixin(ISDADecodeHeadMixin):
    """ISDA for heads with their own ``loss_by_feat`` (Enc, DA, DDR, PID,
    Point): it scores the augmented logits of each linear classifier,
    outputs of no classifier (EncNet's SE logits, PIDNet's boundary map)
    stay plain, and the accuracy entries are measured on the plain logits.

    Such a ``loss_by_feat`` hands the logits to its losses itself, so every
    loss in ``loss_decode`` must be a softmax cross-entropy (PIDNet's
    ``BoundaryLoss``, on its boundary map, excepted).

    Arguments as :class:`ISDADecodeHeadMixin`.

    DAHead: its loss sums a cross-entropy for each of its three classifiers
    (PAM, CAM, and their fused features); each takes ISDA with its own
    statistics, since each sees other features, and ISDA on the fused
    classifier alone would leave two thirds of the loss unaugmented.
    """

    def _check_losses(self, name: str, losses) -> None:
        for loss in losses:
            if not (is_softmax_ce(loss) or isinstance(loss, BoundaryLoss)):
                raise ValueError(
                    f'{name}: {name[4:]} hands its logits to every loss in '
                    'loss_decode itself, and the ISDA bound is derived for '
                    f'softmax cross-entropy, but loss_decode holds '
                    f'{_describe(loss)}; use CrossEntropyLoss(use_sigmoid='
                    f'False) or OhemCrossEntropy, or the stock head '
                    f'{name[4:]!r}')

    def _stock_labels(self, *args) -> Tensor:
        """(N, 1, H, W) labels, or (N, 1, P) at PointHead's points."""
        *points, batch_data_samples = args
        # The base stacking: PIDHead's adds its edge maps.
        labels = BaseDecodeHead._stack_batch_gt(self, batch_data_samples)
        if points:
            labels = point_sample(labels.float(), points[0], mode='nearest',
                                  align_corners=self.align_corners).long()
        return labels

    def loss_by_feat(self, outputs, *args) -> dict:
        """The stock head's ``loss_by_feat`` on the augmented logits, with
        its accuracy entries measured on the plain ones."""
        stock = super(ISDADecodeHeadMixin, self).loss_by_feat
        if self._isda_seen is None:
            return stock(outputs, *args)
        labels = self._stock_labels(*args)
        plain = outputs if isinstance(outputs, tuple) else (outputs,)
        augmented = [self._isda_augment(x, labels) for x in plain]
        scored = tuple(x for x, _ in augmented)
        losses = stock(scored if isinstance(outputs, tuple) else scored[0],
                       *args)
        for logits, (_, name) in zip(plain, augmented):
            if self.isda_classifiers.get(name):
                losses[self.isda_classifiers[name]] = self._plain_accuracy(
                    logits, labels)
        return losses


register_isda_heads(
    ISDADecodeHeadMixin,
    [getattr(decode_heads, name) for name in SUPPORTED_HEADS], MODELS)
for _cls in register_isda_heads(
        ISDAOwnScoringHeadMixin,
        [getattr(decode_heads, name) for name in OWN_SCORING_HEADS], MODELS):
    _cls.isda_classifiers = OWN_SCORING_HEADS[_cls.__name__[4:]]

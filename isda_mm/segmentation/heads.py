"""ISDA for mmseg decode heads that end in dropout + 1x1 ``conv_seg``.

Every pixel of the head's feature map is a sample (T-PAMI 2021, Sec. 5.3):
labels reach the feature resolution by nearest sampling, ignored pixels
neither update the statistics nor get augmented, and the augmented
low-resolution logits then go through the head's own ``loss_by_feat``
(resize, sampler such as OHEM, every loss in ``loss_decode``, class weights,
ignore index), exactly as the stock head scores its logits.

The features are read by a forward hook on ``conv_seg`` while ``loss``
runs, so one mixin serves every head whose ``forward`` returns the output
of ``cls_seg`` unchanged; ``forward`` and ``predict`` stay stock.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmseg.models import decode_heads
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..engine import ISDAHeadMixin, register_isda_heads

# Heads whose forward ends in ``return self.cls_seg(x)`` (mmseg 1.2.2). Not
# here: DA, DDR, PID, Point, OCR (cascade), STDC (its own boundary loss),
# Enc, K-Net, MaskFormer-style and other heads without a per-pixel linear
# classifier.
SUPPORTED_HEADS = (
    'ANNHead', 'APCHead', 'ASPPHead', 'CCHead', 'DMHead', 'DNLHead',
    'DPTHead', 'DepthwiseSeparableASPPHead', 'DepthwiseSeparableFCNHead',
    'EMAHead', 'FCNHead', 'FPNHead', 'GCHead', 'ISAHead', 'LRASPPHead',
    'LightHamHead', 'NLHead', 'PSAHead', 'PSPHead', 'SETRMLAHead',
    'SETRUPHead', 'SegformerHead', 'UPerHead')


class ISDADecodeHeadMixin(ISDAHeadMixin):
    """Adds ISDA to an mmseg decode head (softmax cross-entropy only).

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

    def __init__(self,
                 *args,
                 lambda0: float = 7.5,
                 covariance: str = 'diagonal',
                 lambda_by: str = 'iter',
                 sync_ranks: bool = True,
                 packed_covariance: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._check_softmax()
        self.init_isda(self.out_channels, self.conv_seg.in_channels, lambda0,
                       covariance, lambda_by, ignore_index=self.ignore_index,
                       sync_ranks=sync_ranks,
                       packed_covariance=packed_covariance)

    def _check_softmax(self) -> None:
        name = type(self).__name__
        if self.out_channels == 1:
            raise ValueError(
                f'{name}: out_channels=1 makes a sigmoid binary head, but '
                'the ISDA bound is derived for softmax cross-entropy; set '
                'out_channels=num_classes (2) or use the stock head '
                f'{name[4:]!r}')
        losses = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        for loss in losses:
            kind = type(loss).__name__
            if getattr(loss, 'use_sigmoid', False) or getattr(
                    loss, 'use_mask', False):
                kind += ' with use_sigmoid or use_mask'
            if kind != 'CrossEntropyLoss':
                raise ValueError(
                    f'{name}: the ISDA bound is derived for softmax '
                    f'cross-entropy, but loss_decode holds {kind}; use '
                    'CrossEntropyLoss(use_sigmoid=False) or the stock head '
                    f'{name[4:]!r}')

    def _logits_and_features(self,
                             inputs: Tuple[Tensor]) -> Tuple[Tensor, Tensor]:
        """``forward(inputs)`` and the features ``conv_seg`` saw."""
        seen = {}

        def grab(module, args, output):
            seen['features'], seen['logits'] = args[0], output

        handle = self.conv_seg.register_forward_hook(grab)
        try:
            logits = self.forward(inputs)
        finally:
            handle.remove()
        if logits is not seen.get('logits'):
            raise TypeError(
                f'{type(self).__name__}: forward does not return the output '
                'of conv_seg unchanged, so ISDA cannot augment its logits')
        return logits, seen['features']

    def loss(self, inputs: Tuple[Tensor], batch_data_samples,
             train_cfg) -> dict:
        """The stock losses on ISDA-augmented logits, plus ISDA entries.

        ``acc_seg`` is measured on the plain logits, as at test time.
        """
        logits, features = self._logits_and_features(inputs)
        if features.shape[1] != self.conv_seg.in_channels:
            raise ValueError(f'{type(self).__name__}: conv_seg takes '
                             f'{self.conv_seg.in_channels} channels, got '
                             f'{features.shape[1]}')
        labels = self._stack_batch_gt(batch_data_samples)
        # Nearest sampling keeps labels (and the ignore index) exact.
        small = F.interpolate(labels.float(), size=logits.shape[2:],
                              mode='nearest')
        augmented = self.isda_augment(features, logits, small[:, 0].long(),
                                      self.conv_seg.weight.flatten(1))
        losses = self._loss_by_feat(augmented, logits, labels)
        losses.update(self.isda_log_vars())
        return losses

    def _loss_by_feat(self, augmented: Tensor, logits: Tensor,
                      labels: Tensor) -> dict:
        """``BaseDecodeHead.loss_by_feat`` on the augmented logits, with
        ``acc_seg`` of the plain ones: each is resized and scored once.
        (No supported head overrides ``loss_by_feat``; a test checks it.)"""
        size = labels.shape[2:]
        seg_logits = resize(augmented, size=size, mode='bilinear',
                            align_corners=self.align_corners)
        weight = None
        if self.sampler is not None:
            weight = self.sampler.sample(seg_logits, labels)
        labels = labels.squeeze(1)
        losses = {}
        for loss_decode in self.loss_decode if isinstance(
                self.loss_decode, nn.ModuleList) else [self.loss_decode]:
            value = loss_decode(seg_logits, labels, weight=weight,
                                ignore_index=self.ignore_index)
            name = loss_decode.loss_name
            losses[name] = losses[name] + value if name in losses else value
        with torch.no_grad():
            plain = resize(logits, size=size, mode='bilinear',
                           align_corners=self.align_corners)
        losses['acc_seg'] = accuracy(plain, labels,
                                     ignore_index=self.ignore_index)
        return losses


register_isda_heads(
    ISDADecodeHeadMixin,
    [getattr(decode_heads, name) for name in SUPPORTED_HEADS], MODELS)

"""mmpretrain adapters: the ISDA heads, the paper's backbones, its CIFAR
Cutout (``ClippedCutout``) and semi-supervised ISDA (``semi``: Pi-model,
temporal ensembling, Mean Teacher, VAT)."""
from . import semi  # noqa: F401  (registers the semi-supervised methods)
from .backbones import CIFARResNet, WideResNet
from .heads import ISDAClsHeadMixin, check_config  # registers ISDA<Head>
from .transforms import ClippedCutout

__all__ = [
    'CIFARResNet', 'ClippedCutout', 'ISDAClsHeadMixin', 'WideResNet',
    'check_config'
]

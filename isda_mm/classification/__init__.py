"""mmpretrain adapters: the ISDA heads, the paper's backbones and
semi-supervised ISDA (``semi``: Pi-model, temporal ensembling, Mean Teacher,
VAT)."""
from . import semi  # noqa: F401  (registers the semi-supervised methods)
from .backbones import CIFARResNet, WideResNet
from .heads import ISDAClsHeadMixin, check_config  # registers ISDA<Head>

__all__ = ['CIFARResNet', 'ISDAClsHeadMixin', 'WideResNet', 'check_config']

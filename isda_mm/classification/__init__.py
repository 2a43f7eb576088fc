"""mmpretrain adapters: the ISDA heads, the paper's backbones and Mean
Teacher + ISDA (``semi``)."""
from . import semi  # noqa: F401  (registers Mean Teacher + ISDA)
from .backbones import CIFARResNet, WideResNet
from .heads import ISDAClsHeadMixin, check_config  # registers ISDA<Head>

__all__ = ['CIFARResNet', 'ISDAClsHeadMixin', 'WideResNet', 'check_config']

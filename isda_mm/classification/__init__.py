"""mmpretrain adapters: ISDA heads (and the paper's CIFAR backbones)."""
from .heads import ISDAClsHeadMixin, check_config  # registers ISDA<Head>

__all__ = ['ISDAClsHeadMixin', 'check_config']

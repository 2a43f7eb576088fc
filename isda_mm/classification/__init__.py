"""mmpretrain adapters: ISDA heads (and the paper's CIFAR backbones)."""
from .heads import ISDAClsHeadMixin  # noqa: F401  (registers ISDA<Head>)

__all__ = ['ISDAClsHeadMixin']

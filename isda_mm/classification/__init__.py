"""mmpretrain adapters: the ISDA heads and the paper's CIFAR backbones."""
from .backbones import CIFARResNet, WideResNet
from .heads import ISDAClsHeadMixin, check_config  # registers ISDA<Head>

__all__ = ['CIFARResNet', 'ISDAClsHeadMixin', 'WideResNet', 'check_config']

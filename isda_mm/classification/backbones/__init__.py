"""CIFAR backbones of the ISDA paper's experiments that mmpretrain lacks.

Importing this package registers ``CIFARResNet`` and ``WideResNet`` in
mmpretrain's ``MODELS``.
"""
from .cifar_resnet import CIFARBasicBlock, CIFARResNet
from .wide_resnet import WideBasicBlock, WideResNet

__all__ = ['CIFARBasicBlock', 'CIFARResNet', 'WideBasicBlock', 'WideResNet']
from .convnet13 import ConvNet13  # noqa: E402

__all__ += ['ConvNet13']

"""Backbones of the ISDA paper's experiments that mmpretrain lacks.

Importing this package registers ``CIFARResNet``, ``CIFARSEResNet``,
``CIFARResNeXt``, ``CIFARDenseNet``, ``WideResNet``, ``ShakeShakeResNet``
(the CIFAR experiments) and ``ConvNet13`` (the semi-supervised ones) in
mmpretrain's ``MODELS``.
"""
from .cifar_densenet import CIFARDenseNet
from .cifar_resnet import CIFARBasicBlock, CIFARResNet
from .cifar_resnext import CIFARResNeXt
from .cifar_se_resnet import CIFARSEBasicBlock, CIFARSEResNet
from .convnet13 import ConvNet13
from .shake_shake import ShakeShakeBlock, ShakeShakeResNet
from .wide_resnet import WideBasicBlock, WideResNet

__all__ = [
    'CIFARBasicBlock', 'CIFARDenseNet', 'CIFARResNet', 'CIFARResNeXt',
    'CIFARSEBasicBlock', 'CIFARSEResNet', 'ConvNet13', 'ShakeShakeBlock',
    'ShakeShakeResNet', 'WideBasicBlock', 'WideResNet'
]

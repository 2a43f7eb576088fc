"""The thin CIFAR ResNets of He et al. (2016), Section 4.2.

"Deep Residual Learning for Image Recognition" (CVPR 2016), Section 4.2,
"CIFAR-10 and Analysis": a 3x3 convolution with 16 filters, then three
stages of ``n`` basic blocks with 16, 32 and 64 filters on 32x32, 16x16 and
8x8 maps, so ``depth = 6n + 2`` (global pooling and the classifier are the
neck and head). ResNet-32 and ResNet-110 are the CIFAR networks of the ISDA
paper (Wang et al., NeurIPS 2019 and T-PAMI 2021). mmpretrain's
``ResNet_CIFAR`` is a different network: the ImageNet ResNet (64-512
channels, four stages) with a 3x3 stem.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .utils import parse_out_indices

DEFAULT_INIT = [
    dict(type='Kaiming', layer=['Conv2d']),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


class CIFARBasicBlock(BaseModule):
    """Post-activation basic block: conv3x3-BN-ReLU-conv3x3-BN, add, ReLU.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first convolution. Defaults to 1.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.

    Note:
        When the shape changes (``stride != 1`` or ``in_channels !=
        out_channels``) the shortcut is a 1x1 convolution with stride and
        a BN (the paper's option B), not option A's zero-padded identity.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg)
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.norm1 = build_norm_layer(norm_cfg, out_channels)[1]
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                build_norm_layer(norm_cfg, out_channels)[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to a (B, C_in, H, W) map."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class CIFARResNet(BaseBackbone):
    """ResNet-{20, 32, 44, 56, 110, 1202} for 32x32 inputs (He et al. 2016).

    A 3x3 stem convolution with 16 channels (no max-pooling), then three
    stages of ``(depth - 2) / 6`` :class:`CIFARBasicBlock` with 16, 32 and
    64 channels; the second and third stages halve the resolution. A
    (B, 3, 32, 32) input gives a (B, 64, 8, 8) map from the last stage, for
    ``GlobalAveragePooling`` and ``LinearClsHead(in_channels=64)``.

    Args:
        depth (int): Network depth, one of 20, 32, 44, 56, 110, 1202.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (0, 1, 2) whose output maps are
            returned. Defaults to ``(2, )``, the last stage.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions (fan-out, ReLU gain)
            and unit-weight, zero-bias normalization layers.

    Note:
        Shortcuts that change the shape are 1x1 convolution + BN
        projections (option B of the paper), not the zero-padding option A
        of its CIFAR table; they add 2,752 parameters (0.6% of ResNet-32).

    Example:
        >>> import torch
        >>> from isda_mm.classification.backbones import CIFARResNet
        >>> model = CIFARResNet(depth=32)
        >>> [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
        [(1, 64, 8, 8)]
    """

    arch_settings = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}
    stage_channels = (16, 32, 64)
    stage_strides = (1, 2, 2)

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(DEFAULT_INIT if init_cfg is None else init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(
                f'{type(self).__name__}: depth={depth} is not supported; '
                f'set backbone.depth to one of {sorted(self.arch_settings)} '
                '(depth = 6n + 2)')
        self.depth = depth
        self.out_indices = parse_out_indices(
            type(self).__name__, out_indices, len(self.stage_channels))
        num_blocks = self.arch_settings[depth]

        width = self.stage_channels[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            build_norm_layer(norm_cfg, width)[1], nn.ReLU(inplace=True))
        self.stages = nn.ModuleList()
        for channels, stride in zip(self.stage_channels, self.stage_strides):
            blocks = []
            for i in range(num_blocks):
                blocks.append(
                    self.make_block(width, channels, stride if i == 0 else 1,
                                    norm_cfg))
                width = channels
            self.stages.append(nn.Sequential(*blocks))

    def make_block(self, in_channels: int, out_channels: int, stride: int,
                   norm_cfg: dict) -> nn.Module:
        """Build one residual block; subclasses change the block here.

        Called from ``__init__``, so what it reads from ``self`` must be
        set before ``super().__init__()``.

        Args:
            in_channels (int): Input channels.
            out_channels (int): Output channels.
            stride (int): Stride of the block's first convolution.
            norm_cfg (dict): Config of the normalization layers.

        Returns:
            nn.Module: A :class:`CIFARBasicBlock`.
        """
        return CIFARBasicBlock(in_channels, out_channels, stride, norm_cfg)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the maps of the stages in ``out_indices``.

        Args:
            x (torch.Tensor): Images, (B, in_channels, H, W).

        Returns:
            tuple[torch.Tensor]: One (B, C, H', W') map per index in
            ``out_indices``.
        """
        x = self.stem(x)
        outs = {}
        for i, stage in enumerate(self.stages):
            x = stage(x)
            outs[i] = x
        return tuple(outs[i] for i in self.out_indices)

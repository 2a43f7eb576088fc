"""Wide Residual Networks for CIFAR (Zagoruyko & Komodakis, BMVC 2016).

"Wide Residual Networks", Section 2: a 3x3 stem convolution with 16
filters, then three groups of ``(depth - 4) / 6`` pre-activation wide basic
blocks (BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3) with ``16k``, ``32k`` and
``64k`` filters for widen factor ``k``, then BN-ReLU.
WRN-28-10 (widths 16, 160, 320, 640) with dropout 0.3 is the wide network
of the ISDA paper's CIFAR experiments (Wang et al., NeurIPS 2019 and
T-PAMI 2021). mmpretrain's ``wrn`` configs are the ImageNet bottleneck
networks (``ResNet`` with wider bottlenecks), not these.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .cifar_resnet import DEFAULT_INIT
from .utils import parse_out_indices


class WideBasicBlock(BaseModule):
    """Pre-activation wide basic block with dropout between its convolutions.

    ``out = conv2(dropout(relu(bn2(conv1(relu(bn1(x))))))) + shortcut``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first convolution. Defaults to 1.
        drop_rate (float): Dropout probability between the two
            convolutions. Defaults to 0.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.

    Note:
        When the shape changes the shortcut is a 1x1 convolution (with
        stride) applied to the pre-activated input ``relu(bn1(x))``, as in
        the authors' code; otherwise it is the identity on ``x``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 drop_rate: float = 0.,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg)
        self.norm1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else None
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(
                in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to a (B, C_in, H, W) map."""
        act = self.relu(self.norm1(x))
        identity = x if self.shortcut is None else self.shortcut(act)
        out = self.relu(self.norm2(self.conv1(act)))
        if self.dropout is not None:
            out = self.dropout(out)
        return self.conv2(out) + identity


@MODELS.register_module()
class WideResNet(BaseBackbone):
    """WRN-depth-k for 32x32 inputs (Zagoruyko & Komodakis 2016).

    A 3x3 stem convolution with 16 channels, then three groups of
    ``(depth - 4) / 6`` :class:`WideBasicBlock` with ``16k``, ``32k`` and
    ``64k`` channels (the second and third halve the resolution), then
    BN-ReLU. A (B, 3, 32, 32) input gives a (B, 64k, 8, 8) map from the
    last stage: ``LinearClsHead(in_channels=640)`` for WRN-28-10.

    Args:
        depth (int): Network depth; ``depth - 4`` must be a positive
            multiple of 6. Defaults to 28.
        widen_factor (int): Width multiplier ``k``. Defaults to 10.
        drop_rate (float): Dropout probability inside every block, in
            ``[0, 1)``. Defaults to 0 (none); the paper's CIFAR setting is
            0.3, which the configs set.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (0, 1, 2) whose output maps are
            returned. Defaults to ``(2, )``, the last stage.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions (fan-out, ReLU gain)
            and unit-weight, zero-bias normalization layers.

    Note:
        Blocks are pre-activated, so only the last stage's output passes
        the final BN-ReLU; maps of earlier stages in ``out_indices`` are
        the raw sums of their last block.

    Example:
        >>> import torch
        >>> from isda_mm.classification.backbones import WideResNet
        >>> model = WideResNet(depth=16, widen_factor=2)
        >>> [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
        [(1, 128, 8, 8)]
    """

    stage_strides = (1, 2, 2)

    def __init__(self,
                 depth: int = 28,
                 widen_factor: int = 10,
                 drop_rate: float = 0.,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(DEFAULT_INIT if init_cfg is None else init_cfg)
        if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
            raise ValueError(
                f'WideResNet: depth={depth} is not supported; set '
                'backbone.depth to 6n + 4 with n >= 1 (10, 16, 22, 28, 40, '
                '...)')
        if not isinstance(widen_factor, int) or widen_factor < 1:
            raise ValueError(
                f'WideResNet: widen_factor={widen_factor} must be a '
                'positive integer; set backbone.widen_factor')
        if not 0 <= drop_rate < 1:
            raise ValueError(
                f'WideResNet: drop_rate={drop_rate} must be in [0, 1); set '
                'backbone.drop_rate')
        self.depth = depth
        self.widen_factor = widen_factor
        self.drop_rate = drop_rate
        self.out_indices = parse_out_indices('WideResNet', out_indices,
                                             len(self.stage_strides))
        num_blocks = (depth - 4) // 6
        stage_channels = [c * widen_factor for c in (16, 32, 64)]

        width = 16
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.stages = nn.ModuleList()
        for channels, stride in zip(stage_channels, self.stage_strides):
            blocks = []
            for i in range(num_blocks):
                blocks.append(
                    WideBasicBlock(width, channels, stride if i == 0 else 1,
                                   drop_rate, norm_cfg))
                width = channels
            self.stages.append(nn.Sequential(*blocks))
        self.final_norm = build_norm_layer(norm_cfg, width)[1]
        self.relu = nn.ReLU(inplace=True)

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
        last = len(self.stages) - 1
        for i, stage in enumerate(self.stages):
            x = stage(x)
            outs[i] = self.relu(self.final_norm(x)) if i == last else x
        return tuple(outs[i] for i in self.out_indices)

"""Shake-Shake ResNets for CIFAR (Gastaldi, arXiv:1705.07485, 2017).

"Shake-Shake regularization", Sections 2 and 3.1: a 3-branch ResNet whose
two residual branches (ReLU-conv3x3-BN-ReLU-conv3x3-BN) are summed with a
random convex weight ``alpha`` in the forward pass and an independent one,
``beta``, in the backward pass, both drawn per image ("Shake-Shake-Image");
at test time the branches are averaged. Shake-Shake-26 2x32d (3.0M
parameters) and 2x112d (36.4M) are CIFAR networks of the ISDA paper
(Wang et al., NeurIPS 2019 and T-PAMI 2021, Table 2), built here as the
authors' released code builds them.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .utils import parse_out_indices

# The released code draws convolutions from Kaiming-normal with fan-in
# (PyTorch's default mode), not the fan-out of the other CIFAR backbones.
SHAKE_SHAKE_INIT = [
    dict(type='Kaiming', layer=['Conv2d'], mode='fan_in'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


def _per_image(weight: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Shape a (B, ) weight to broadcast over the other dims of ``like``."""
    return weight.view(-1, *([1] * (like.dim() - 1)))


class ShakeShakeFunction(torch.autograd.Function):
    """Mix two tensors with ``alpha`` forward and ``beta`` backward.

    ``forward(x1, x2, alpha, beta) = alpha * x1 + (1 - alpha) * x2``, and
    the incoming gradient ``g`` goes back as ``beta * g`` to ``x1`` and
    ``(1 - beta) * g`` to ``x2``. ``alpha`` and ``beta`` are (B, ) tensors,
    one weight per sample; they receive no gradient.

    Note:
        ``beta`` is given with the forward call rather than drawn inside
        ``backward`` (as the released code does): the distribution is the
        same, the function is deterministic given its inputs, and a seed
        reproduces a whole training step.
    """

    @staticmethod
    def forward(ctx, x1: torch.Tensor, x2: torch.Tensor, alpha: torch.Tensor,
                beta: torch.Tensor) -> torch.Tensor:
        """Return ``alpha * x1 + (1 - alpha) * x2``, per sample."""
        ctx.save_for_backward(beta)
        alpha = _per_image(alpha, x1)
        return alpha * x1 + (1 - alpha) * x2

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        """Send ``beta * grad`` to ``x1`` and ``(1 - beta) * grad`` to
        ``x2``; none to ``alpha`` and ``beta``."""
        beta = _per_image(ctx.saved_tensors[0], grad)
        return beta * grad, (1 - beta) * grad, None, None


def shake_shake(x1: torch.Tensor, x2: torch.Tensor,
                training: bool) -> torch.Tensor:
    """Combine two residual branches as Shake-Shake-Image does.

    Args:
        x1 (torch.Tensor): First branch, (B, ...).
        x2 (torch.Tensor): Second branch, same shape as ``x1``.
        training (bool): Whether to shake. In training, ``alpha`` and
            ``beta`` are drawn independently from U(0, 1) for each sample;
            otherwise the result is the expectation ``0.5 * (x1 + x2)``.

    Returns:
        torch.Tensor: The mixed branches, shaped like ``x1``.
    """
    if not training:
        return 0.5 * (x1 + x2)
    alpha, beta = torch.rand(
        2, x1.size(0), dtype=x1.dtype, device=x1.device).unbind(0)
    return ShakeShakeFunction.apply(x1, x2, alpha, beta)


class ShakeShakeShortcut(BaseModule):
    """Shortcut of a block that changes shape: two shifted 1x1 paths.

    ``x`` goes through a ReLU, then one path takes every ``stride``-th pixel
    starting at (0, 0) and the other starting at (1, 1) (the map shifted up
    and left by one pixel, zero-filled at the bottom and right); each path
    is a 1x1 convolution to ``out_channels / 2``, and the concatenation
    passes a BN.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels, even.
        stride (int): Subsampling of both paths. Defaults to 1.
        norm_cfg (dict): Config of the normalization layer.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg)
        self.stride = stride
        self.conv1 = nn.Conv2d(in_channels, out_channels // 2, 1, bias=False)
        self.conv2 = nn.Conv2d(in_channels, out_channels // 2, 1, bias=False)
        self.norm = build_norm_layer(norm_cfg, out_channels)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the shortcut to a (B, C_in, H, W) map."""
        x = F.relu(x)
        s = self.stride
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        out = torch.cat(
            [self.conv1(x[:, :, ::s, ::s]),
             self.conv2(shifted[:, :, ::s, ::s])], 1)
        return self.norm(out)


class ShakeShakeBlock(BaseModule):
    """Residual block with two ReLU-conv-BN-ReLU-conv-BN branches.

    ``out = shake_shake(branch1(x), branch2(x)) + shortcut(x)``; there is
    no ReLU after the sum (each branch starts with one).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first convolution of each branch.
            Defaults to 1.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.

    Note:
        The shortcut is the identity when the shape is kept and a
        :class:`ShakeShakeShortcut` otherwise.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg)
        self.branch1 = self._branch(in_channels, out_channels, stride,
                                    norm_cfg)
        self.branch2 = self._branch(in_channels, out_channels, stride,
                                    norm_cfg)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ShakeShakeShortcut(in_channels, out_channels,
                                               stride, norm_cfg)

    @staticmethod
    def _branch(in_channels: int, out_channels: int, stride: int,
                norm_cfg: dict) -> nn.Sequential:
        return nn.Sequential(
            # not in place: x also feeds the other branch and the shortcut
            nn.ReLU(inplace=False),
            nn.Conv2d(
                in_channels, out_channels, 3, stride, padding=1, bias=False),
            build_norm_layer(norm_cfg, out_channels)[1],
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            build_norm_layer(norm_cfg, out_channels)[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to a (B, C_in, H, W) map."""
        identity = x if self.shortcut is None else self.shortcut(x)
        mixed = shake_shake(self.branch1(x), self.branch2(x), self.training)
        return mixed + identity


@MODELS.register_module()
class ShakeShakeResNet(BaseBackbone):
    """Shake-Shake-depth (2 x ``base_channels``d) for 32x32 inputs.

    A 3x3 stem convolution (with bias) to 16 channels and a BN, then three
    stages of ``(depth - 2) / 6`` :class:`ShakeShakeBlock` with ``w``,
    ``2w`` and ``4w`` channels for ``w = base_channels`` (the second and
    third halve the resolution), then a ReLU. A (B, 3, 32, 32) input gives
    a (B, 4w, 8, 8) map from the last stage: ``LinearClsHead(in_channels=
    128)`` for 2x32d, 448 for 2x112d.

    Args:
        depth (int): Network depth; ``depth - 2`` must be a positive
            multiple of 6. Defaults to 26.
        base_channels (int): Width ``w`` of each branch in the first stage
            (the "32" of "2x32d"); a positive even integer. Defaults to 32.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (0, 1, 2) whose output maps are
            returned. Defaults to ``(2, )``, the last stage.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions (fan-in, ReLU gain, as
            the released code) and unit-weight, zero-bias normalization
            layers.

    Note:
        Only the last stage's output passes the final ReLU; maps of earlier
        stages in ``out_indices`` are the raw sums of their last block.

    Example:
        >>> import torch
        >>> from isda_mm.classification.backbones import ShakeShakeResNet
        >>> model = ShakeShakeResNet(depth=8, base_channels=16)
        >>> [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
        [(1, 64, 8, 8)]
    """

    stem_channels = 16
    stage_strides = (1, 2, 2)

    def __init__(self,
                 depth: int = 26,
                 base_channels: int = 32,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(SHAKE_SHAKE_INIT if init_cfg is None else init_cfg)
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f'ShakeShakeResNet: depth={depth} is not supported; set '
                'backbone.depth to 6n + 2 with n >= 1 (8, 14, 20, 26, ...)')
        if (not isinstance(base_channels, int) or base_channels < 2
                or base_channels % 2):
            raise ValueError(
                f'ShakeShakeResNet: base_channels={base_channels} must be a '
                'positive even integer (the shortcuts concatenate two '
                'halves); set backbone.base_channels')
        self.depth = depth
        self.base_channels = base_channels
        self.out_indices = parse_out_indices('ShakeShakeResNet', out_indices,
                                             len(self.stage_strides))
        num_blocks = (depth - 2) // 6

        width = self.stem_channels
        # The stem has no ReLU: every branch and shortcut starts with one.
        # Its bias is redundant before BN but kept, so that the parameter
        # count is the released network's.
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            build_norm_layer(norm_cfg, width)[1])
        self.stages = nn.ModuleList()
        for i, stride in enumerate(self.stage_strides):
            channels = base_channels * 2**i
            blocks = []
            for j in range(num_blocks):
                blocks.append(
                    ShakeShakeBlock(width, channels, stride if j == 0 else 1,
                                    norm_cfg))
                width = channels
            self.stages.append(nn.Sequential(*blocks))

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
            outs[i] = F.relu(x) if i == last else x
        return tuple(outs[i] for i in self.out_indices)

"""SE-ResNets for CIFAR: the thin CIFAR ResNet with squeeze-and-excitation.

Hu et al., "Squeeze-and-Excitation Networks" (CVPR 2018), Section 3 and
Fig. 3 (SE-ResNet module): each residual branch is rescaled channel-wise by
``sigmoid(W2 relu(W1 avgpool(u)))`` before the identity is added. The ISDA
paper (Wang et al., T-PAMI 2021, Table 2) trains SE-ResNet-110 (1.7M
parameters) on CIFAR-10/100; its released network is the CIFAR ResNet of
He et al. (2016) with 1x1 convolution + BN projection shortcuts and a
bias-free SE layer of reduction 16 after the second BN of every block.
"""
from typing import Optional, Sequence, Union

import torch
from mmpretrain.models.utils import SELayer
from mmpretrain.registry import MODELS
from torch import nn

from .cifar_resnet import CIFARBasicBlock, CIFARResNet


class CIFARSEBasicBlock(CIFARBasicBlock):
    """:class:`CIFARBasicBlock` whose residual branch passes an SE layer.

    conv3x3-BN-ReLU-conv3x3-BN-SE, add the shortcut, ReLU.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first convolution. Defaults to 1.
        se_ratio (int): The SE layer squeezes ``out_channels`` to
            ``out_channels // se_ratio``. Defaults to 16.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.

    Note:
        mmpretrain's ``SELayer`` computes the excitation with two 1x1
        convolutions on the pooled (B, C, 1, 1) map, which are the two
        fully connected layers of the paper. They are built without bias,
        and with ``out_channels // se_ratio`` squeeze channels rather than
        the layer's default rounding to a multiple of 8 (which would give
        8 instead of 1 for the 16-channel stage).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 se_ratio: int = 16,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(in_channels, out_channels, stride, norm_cfg,
                         init_cfg)
        self.se = SELayer(
            out_channels,
            squeeze_channels=out_channels // se_ratio,
            bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to a (B, C_in, H, W) map."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.se(self.norm2(self.conv2(out)))
        return self.relu(out + identity)


@MODELS.register_module()
class CIFARSEResNet(CIFARResNet):
    """SE-ResNet-{20, 32, 44, 56, 110, 1202} for 32x32 inputs.

    :class:`CIFARResNet` (3x3 stem with 16 channels, three stages of
    ``(depth - 2) / 6`` blocks with 16, 32 and 64 channels, projection
    shortcuts) built from :class:`CIFARSEBasicBlock`. A (B, 3, 32, 32)
    input gives a (B, 64, 8, 8) map from the last stage, for
    ``GlobalAveragePooling`` and ``LinearClsHead(in_channels=64)``.
    SE-ResNet-110 with a 10-way classifier has 1,742,810 parameters.

    Args:
        depth (int): Network depth, one of 20, 32, 44, 56, 110, 1202.
        se_ratio (int): Reduction of the SE layers: a stage with ``C``
            channels squeezes to ``C // se_ratio``. Defaults to 16.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (0, 1, 2) whose output maps are
            returned. Defaults to ``(2, )``, the last stage.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to that of :class:`CIFARResNet` (Kaiming-normal
            convolutions, fan-out; unit-weight, zero-bias norms); the SE
            layers then start from PyTorch's default ``nn.Linear`` init.

    Note:
        The SE weights are reset to PyTorch's default (uniform in
        ``+-1/sqrt(fan_in)``) after the ``init_cfg`` runs, unless it is a
        ``Pretrained`` one, because the released network re-initializes
        only its convolutions and BNs: the fan-out Kaiming init of the
        convolutions would give the 16 -> 1 squeeze a weight std of 1.4.

    Example:
        >>> import torch
        >>> from isda_mm.classification.backbones import CIFARSEResNet
        >>> model = CIFARSEResNet(depth=20)
        >>> [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
        [(1, 64, 8, 8)]
    """

    def __init__(self,
                 depth: int,
                 se_ratio: int = 16,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        narrowest = min(self.stage_channels)
        if (isinstance(se_ratio, bool) or not isinstance(se_ratio, int)
                or not 1 <= se_ratio <= narrowest):
            raise ValueError(
                f'CIFARSEResNet: se_ratio={se_ratio!r} must be an integer in '
                f'[1, {narrowest}] (the {narrowest}-channel stage squeezes '
                f'to {narrowest} // se_ratio channels); set '
                'backbone.se_ratio, e.g. to 16')
        # make_block runs inside CIFARResNet.__init__ and reads it.
        self.se_ratio = se_ratio
        super().__init__(depth, in_channels, out_indices, norm_cfg, init_cfg)

    def make_block(self, in_channels: int, out_channels: int, stride: int,
                   norm_cfg: dict) -> nn.Module:
        """Build one :class:`CIFARSEBasicBlock`.

        Args:
            in_channels (int): Input channels.
            out_channels (int): Output channels.
            stride (int): Stride of the block's first convolution.
            norm_cfg (dict): Config of the normalization layers.

        Returns:
            nn.Module: The block.
        """
        return CIFARSEBasicBlock(in_channels, out_channels, stride,
                                 self.se_ratio, norm_cfg)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then give the SE layers PyTorch's init."""
        super().init_weights()
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [
            self.init_cfg
        ]
        # A checkpoint already holds the SE weights (as mmpretrain's ResNet
        # skips zero_init_residual after a Pretrained init).
        if any(cfg and cfg.get('type') == 'Pretrained' for cfg in cfgs):
            return
        for module in self.modules():
            if isinstance(module, SELayer):
                # A 1x1 convolution's default init equals nn.Linear's.
                module.conv1.conv.reset_parameters()
                module.conv2.conv.reset_parameters()

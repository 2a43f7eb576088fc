"""ResNeXt-29 for CIFAR (Xie et al., CVPR 2017, Section 5.3).

"Aggregated Residual Transformations for Deep Neural Networks", Section
5.3, "Experiments on CIFAR": a 3x3 convolution with 64 filters, then three
stages of three bottleneck blocks with 256, 512 and 1024 output channels on
32x32, 16x16 and 8x8 maps; the grouped 3x3 convolution of a block has
``groups * width_per_group`` channels in the first stage, doubling per
stage. ResNeXt-29, 8x64d (34.4M parameters) is a CIFAR network of the ISDA
paper (Wang et al., T-PAMI 2021, Table 2); its released code also builds
16x64d.
"""
from typing import Optional, Sequence, Union

from mmpretrain.models.backbones.resnet_cifar import ResNet_CIFAR
from mmpretrain.models.backbones.resnext import Bottleneck, ResNeXt
from mmpretrain.registry import MODELS

from .cifar_resnet import DEFAULT_INIT
from .utils import parse_out_indices


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (
        value > 0)


@MODELS.register_module()
class CIFARResNeXt(ResNeXt, ResNet_CIFAR):
    """ResNeXt-{11, 20, 29, ..., 101} (``depth = 9n + 2``) for 32x32 inputs.

    mmpretrain's ``ResNeXt`` (its bottleneck: 1x1 reduce, grouped 3x3 with
    the stride, 1x1 expand, post-activation, 1x1 convolution + BN
    projection shortcuts) on the 3x3 stem of its ``ResNet_CIFAR`` (64
    channels, no max-pooling), with three stages of ``n`` blocks. The
    stages output 256, 512 and 1024 channels; a (B, 3, 32, 32) input gives
    a (B, 1024, 8, 8) map from the last stage, for
    ``GlobalAveragePooling`` and ``LinearClsHead(in_channels=1024)``.
    ResNeXt-29, 8x64d with a 10-way classifier has 34,426,698 parameters.

    Args:
        depth (int): Network depth, ``9n + 2`` for ``n`` in 1..11 (the
            released code names 29, 38, 47, 56, 101). Defaults to 29.
        groups (int): Cardinality, the groups of the 3x3 convolutions.
            Defaults to 8.
        width_per_group (int): Channels per group in the first stage
            (doubled in each later stage): ``8x64d`` is ``groups=8,
            width_per_group=64``. Defaults to 64.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (0, 1, 2) whose output maps are
            returned, in stage order. Defaults to ``(2, )``, the last stage.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions (fan-out, ReLU gain)
            and unit-weight, zero-bias normalization layers, as released;
            unlike mmpretrain's ResNeXt, the last BN of a block is not
            zero-initialized.

    Note:
        mmpretrain's bottleneck gives the grouped convolution of a stage
        whose blocks output ``4 * planes`` channels ``groups *
        width_per_group * planes // 64`` channels; with ``planes`` = 64,
        128 and 256 that is exactly the released ``groups *
        floor(planes * width_per_group / 64)``. ``groups=1`` is refused:
        the bottleneck then ignores ``width_per_group``.

    Example:
        >>> import torch
        >>> from isda_mm.classification.backbones import CIFARResNeXt
        >>> model = CIFARResNeXt(depth=11, groups=2, width_per_group=4)
        >>> [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
        [(1, 1024, 8, 8)]
    """

    arch_settings = {
        9 * n + 2: (Bottleneck, (n, n, n))
        for n in range(1, 12)
    }

    def __init__(self,
                 depth: int = 29,
                 groups: int = 8,
                 width_per_group: int = 64,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        if depth not in self.arch_settings:
            raise ValueError(
                f'CIFARResNeXt: depth={depth!r} is not supported; set '
                f'backbone.depth to one of {sorted(self.arch_settings)} '
                '(depth = 9n + 2)')
        if not _positive_int(groups) or groups < 2:
            raise ValueError(
                f'CIFARResNeXt: groups={groups!r} must be an integer >= 2 '
                '(the cardinality; with 1 the mmpretrain bottleneck ignores '
                'width_per_group); set backbone.groups, e.g. to 8')
        if not _positive_int(width_per_group):
            raise ValueError(
                f'CIFARResNeXt: width_per_group={width_per_group!r} must be '
                'a positive integer; set backbone.width_per_group, e.g. to '
                '64')
        num_stages = 3
        stages = parse_out_indices('CIFARResNeXt', out_indices, num_stages)
        super().__init__(
            depth,
            groups=groups,
            width_per_group=width_per_group,
            in_channels=in_channels,
            stem_channels=64,
            base_channels=64,
            num_stages=num_stages,
            strides=(1, 2, 2),
            dilations=(1, 1, 1),
            # ResNet_CIFAR.forward returns the maps in stage order.
            out_indices=tuple(sorted(set(stages))),
            norm_cfg=norm_cfg,
            zero_init_residual=False,
            init_cfg=DEFAULT_INIT if init_cfg is None else init_cfg)

"""DenseNet-BC for CIFAR (Huang et al., CVPR 2017, Section 3 and 4.1).

"Densely Connected Convolutional Networks", Section 3 ("DenseNet-BC") and
Section 4.1 ("Implementation Details", CIFAR): a 3x3 stem convolution on
the 32x32 image (no pooling), three dense blocks of ``(depth - 4) / 6``
bottleneck layers (BN-ReLU-conv1x1 with ``4k`` filters, BN-ReLU-conv3x3 with
``k`` filters, output concatenated to the input), a transition
(BN-ReLU-conv1x1 keeping half of the channels, 2x2 average pooling) between
blocks, and a final BN-ReLU. DenseNet-BC-100 with growth rate ``k = 12``
(0.8M parameters, 342 output channels) is the DenseNet of the ISDA paper's
CIFAR experiments (Wang et al., NeurIPS 2019, Table 2 and T-PAMI 2021). The
dense layers, blocks and transitions are mmpretrain's; only the stem and
the three-block layout are CIFAR's.
"""
from typing import Optional, Sequence, Union

from mmpretrain.models.backbones import DenseNet
from mmpretrain.registry import MODELS
from torch import nn

from .cifar_resnet import DEFAULT_INIT
from .utils import parse_out_indices


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@MODELS.register_module()
class CIFARDenseNet(DenseNet):
    """DenseNet-BC-depth-k for 32x32 inputs (Huang et al. 2017).

    mmpretrain's :class:`DenseNet` (its ``DenseLayer``, ``DenseBlock`` and
    ``DenseTransition``) with three dense blocks of ``(depth - 4) / 6``
    layers and a single 3x3 stem convolution instead of the ImageNet stem
    (7x7 stride-2 convolution, BN, ReLU, max-pooling). A (B, 3, 32, 32)
    input gives a (B, 342, 8, 8) map for DenseNet-BC-100-12:
    ``LinearClsHead(in_channels=342)``.

    Args:
        depth (int): Network depth ``6n + 4`` (three blocks of ``n`` two-conv
            layers, the stem, two transitions and the classifier).
            Defaults to 100.
        growth_rate (int): Channels ``k`` each dense layer adds.
            Defaults to 12.
        compression (float): Fraction of channels a transition keeps, in
            ``(0, 1]``. Defaults to 0.5 (the "C" of DenseNet-BC).
        bn_size (int): The bottleneck 1x1 convolution has
            ``bn_size * growth_rate`` filters. Defaults to 4.
        drop_rate (float): Dropout probability on the new features of every
            dense layer, in ``[0, 1)``; active in training only.
            Defaults to 0.
        init_channels (int): Filters of the stem convolution. Defaults to
            24, the released ISDA code's value (``2k`` for ``k = 12``).
        memory_efficient (bool): Recompute the concatenation and bottleneck
            of each dense layer in the backward pass instead of storing them
            (gradient checkpointing; slower, much less memory). Defaults to
            False.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (0, 1, 2) whose outputs are
            returned, in stage order. Defaults to ``(2, )``.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions (fan-out, ReLU gain) and
            unit-weight, zero-bias normalization layers, as the released
            code initializes them.

    Note:
        As in mmpretrain's ``DenseNet``, a stage's output is taken after its
        transition: (B, 108, 16, 16) and (B, 150, 8, 8) for stages 0 and 1
        of DenseNet-BC-100-12, and the last stage's map has passed the
        final BN-ReLU.

    Example:
        >>> import torch
        >>> from isda_mm.classification.backbones import CIFARDenseNet
        >>> model = CIFARDenseNet(depth=40)
        >>> [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
        [(1, 132, 8, 8)]
    """

    num_blocks = 3

    def __init__(self,
                 depth: int = 100,
                 growth_rate: int = 12,
                 compression: float = 0.5,
                 bn_size: int = 4,
                 drop_rate: float = 0.,
                 init_channels: int = 24,
                 memory_efficient: bool = False,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        if not _is_positive_int(depth) or depth < 10 or (depth - 4) % 6:
            raise ValueError(
                f'CIFARDenseNet: depth={depth} is not supported; set '
                'backbone.depth to 6n + 4 with n >= 1 (40, 100, 190, ...)')
        for key, value in (('growth_rate', growth_rate),
                           ('bn_size', bn_size),
                           ('init_channels', init_channels)):
            if not _is_positive_int(value):
                raise ValueError(
                    f'CIFARDenseNet: {key}={value} must be a positive '
                    f'integer; set backbone.{key}')
        if not 0 < compression <= 1:
            raise ValueError(
                f'CIFARDenseNet: compression={compression} must be in '
                '(0, 1]; set backbone.compression')
        if not 0 <= drop_rate < 1:
            raise ValueError(
                f'CIFARDenseNet: drop_rate={drop_rate} must be in [0, 1); '
                'set backbone.drop_rate')
        # mmpretrain's forward emits stages in order, whatever the order
        # asked for, so the indices are kept sorted to say what it returns.
        indices = sorted(set(parse_out_indices(
            'CIFARDenseNet', out_indices, self.num_blocks)))
        num_layers = (depth - 4) // 6
        super().__init__(
            arch=dict(
                growth_rate=growth_rate,
                depths=[num_layers] * self.num_blocks,
                init_channels=init_channels),
            in_channels=in_channels,
            bn_size=bn_size,
            drop_rate=drop_rate,
            compression_factor=compression,
            memory_efficient=memory_efficient,
            norm_cfg=norm_cfg,
            out_indices=indices,
            init_cfg=DEFAULT_INIT if init_cfg is None else init_cfg)
        self.out_indices = tuple(indices)
        self.depth = depth
        # 32x32 images: no stride, norm or pooling before the first block.
        self.stem = nn.Sequential(
            nn.Conv2d(
                in_channels, init_channels, 3, padding=1, bias=False))

    def train(self, mode: bool = True) -> 'CIFARDenseNet':
        """Set training mode; returns ``self`` as ``nn.Module.train`` does
        (mmpretrain's ``DenseNet.train`` returns None, which breaks
        ``model.eval()(x)``)."""
        super().train(mode)
        return self

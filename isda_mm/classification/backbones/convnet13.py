"""The 13-layer ConvNet ("conv-large") of the Pi-model and Mean Teacher.

Laine & Aila, "Temporal Ensembling for Semi-Supervised Learning" (ICLR
2017), Table 5, and Tarvainen & Valpola, "Mean teachers are better role
models" (NeurIPS 2017), Appendix B.1: three 3x3 convolutions with 128
filters, 2x2 max-pooling, dropout 0.5; three 3x3 convolutions with 256
filters, max-pooling, dropout 0.5; a 3x3 "valid" convolution with 512
filters, 1x1 convolutions with 256 and 128 filters, global average pooling.
Every convolution is followed by batch normalization and a leaky ReLU with
slope 0.1. It is the network of the ISDA paper's semi-supervised experiments
(Wang et al., T-PAMI 2021, Table 6). The authors' TensorFlow code uses
weight-normalized convolutions with mean-only batch normalization instead;
this is the batch-normalized form the papers' tables describe.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .utils import parse_out_indices

# (filters, kernel size, padding) of each convolution, per stage.
STAGES = (
    ((128, 3, 1), (128, 3, 1), (128, 3, 1)),
    ((256, 3, 1), (256, 3, 1), (256, 3, 1)),
    ((512, 3, 0), (256, 1, 0), (128, 1, 0)),
)


@MODELS.register_module()
class ConvNet13(BaseBackbone):
    """The 13-layer ConvNet of the Pi-model and Mean Teacher papers.

    A (B, 3, 32, 32) input gives a (B, 128, 6, 6) map from the last stage:
    ``GlobalAveragePooling`` then ``LinearClsHead(in_channels=128)``, as the
    papers' global average pooling and softmax layer. About 3.1 million
    parameters without the classifier.

    Args:
        in_channels (int): Input image channels. Defaults to 3.
        drop_rate (float): Dropout probability after each of the first two
            max-pooling layers, in ``[0, 1)``. Defaults to 0.5, the papers'
            setting.
        negative_slope (float): Slope of the leaky ReLUs. Defaults to 0.1.
        out_indices (Sequence[int]): Stages (0, 1, 2) whose output maps are
            returned. Defaults to ``(2, )``, the last stage.
        norm_cfg (dict): Config of the normalization layers.
            Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions (leaky ReLU gain) and
            unit-weight, zero-bias normalization layers.

    Example:
        >>> import torch
        >>> from isda_mm.classification.backbones import ConvNet13
        >>> model = ConvNet13()
        >>> [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
        [(1, 128, 6, 6)]
    """

    def __init__(self,
                 in_channels: int = 3,
                 drop_rate: float = 0.5,
                 negative_slope: float = 0.1,
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer=['Conv2d'], a=negative_slope,
                     nonlinearity='leaky_relu'),
                dict(type='Constant', val=1, layer=['_BatchNorm']),
            ]
        super().__init__(init_cfg)
        if not 0 <= drop_rate < 1:
            raise ValueError(
                f'ConvNet13: drop_rate={drop_rate} must be in [0, 1); set '
                'backbone.drop_rate')
        self.out_indices = parse_out_indices('ConvNet13', out_indices,
                                             len(STAGES))
        self.stages = nn.ModuleList()
        width = in_channels
        for i, convs in enumerate(STAGES):
            layers = []
            for channels, kernel, padding in convs:
                layers += [
                    nn.Conv2d(width, channels, kernel, padding=padding,
                              bias=False),
                    build_norm_layer(norm_cfg, channels)[1],
                    nn.LeakyReLU(negative_slope, inplace=True),
                ]
                width = channels
            if i < len(STAGES) - 1:
                layers.append(nn.MaxPool2d(2, 2))
                if drop_rate > 0:
                    layers.append(nn.Dropout(drop_rate))
            self.stages.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the maps of the stages in ``out_indices``.

        Args:
            x (torch.Tensor): Images, (B, in_channels, H, W).

        Returns:
            tuple[torch.Tensor]: One (B, C, H', W') map per index in
            ``out_indices``.
        """
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs[i] for i in self.out_indices)

"""CIFARResNet and WideResNet: shapes, published sizes, init, errors."""
import math

import pytest
import torch
from mmpretrain.registry import MODELS
from torch import nn

from isda_mm.classification.backbones import (
    CIFARBasicBlock,
    CIFARResNet,
    WideBasicBlock,
    WideResNet,
)

INPUT = (2, 3, 32, 32)


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny convolutions gain nothing from threads and, on a busy 2-core
    machine, OpenMP waits make them 50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def classifier_params(backbone, num_classes=10):
    """Backbone plus the linear classifier the papers count."""
    width = backbone.stages[-1][-1].conv2.out_channels
    return num_params(backbone) + (width + 1) * num_classes


def check_every_parameter_learns(model, out):
    out.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name


def test_registered_in_mmpretrain():
    assert MODELS.get('CIFARResNet') is CIFARResNet
    assert MODELS.get('WideResNet') is WideResNet
    model = MODELS.build(dict(type='CIFARResNet', depth=20))
    assert isinstance(model, CIFARResNet)


@pytest.mark.parametrize('depth', [20, 32, 110])
def test_cifar_resnet_forward(depth):
    model = CIFARResNet(depth=depth)
    model.init_weights()
    out = model(torch.rand(INPUT))
    assert isinstance(out, tuple) and len(out) == 1
    assert out[0].shape == (2, 64, 8, 8)
    blocks = [b for b in model.modules() if isinstance(b, CIFARBasicBlock)]
    assert len(blocks) == (depth - 2) // 2
    check_every_parameter_learns(model, out[0])


def test_cifar_resnet_out_indices():
    model = CIFARResNet(depth=20, out_indices=(0, 1, -1))
    assert model.out_indices == (0, 1, 2)
    shapes = [tuple(x.shape) for x in model(torch.rand(INPUT))]
    assert shapes == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]


def test_cifar_resnet_projection_shortcuts():
    model = CIFARResNet(depth=20)
    firsts = [stage[0] for stage in model.stages]
    assert firsts[0].downsample is None  # 16 -> 16, stride 1
    for block in firsts[1:]:
        conv, norm = block.downsample
        assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
        assert isinstance(norm, nn.BatchNorm2d)
    assert all(b.downsample is None for s in model.stages for b in s[1:])
    # the 3x3 stem keeps 32x32: no max-pooling, no stride
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.stem[0].kernel_size == (3, 3)
    assert model.stem[0].stride == (1, 1)


@pytest.mark.parametrize('depth, published', [(20, 0.27e6), (32, 0.46e6),
                                              (44, 0.66e6), (56, 0.85e6),
                                              (110, 1.7e6)])
def test_cifar_resnet_size(depth, published):
    """He et al. 2016, Table 6 (sizes with the 10-way classifier)."""
    count = classifier_params(CIFARResNet(depth=depth))
    assert count == pytest.approx(published, rel=0.025)


@pytest.mark.parametrize('depth', [18, 33, 50, '32'])
def test_cifar_resnet_bad_depth(depth):
    with pytest.raises(ValueError, match=f'depth={depth} is not supported'):
        CIFARResNet(depth=depth)


@pytest.mark.parametrize('out_indices', [(3, ), (0, -4), ()])
def test_bad_out_indices(out_indices):
    match = 'out_indices is empty' if not out_indices else 'out_indices='
    with pytest.raises(ValueError, match=match):
        CIFARResNet(depth=20, out_indices=out_indices)
    with pytest.raises(ValueError, match=match):
        WideResNet(depth=10, widen_factor=1, out_indices=out_indices)


def test_kaiming_init():
    model = CIFARResNet(depth=20)
    model.init_weights()
    conv = model.stages[2][1].conv1  # 64 -> 64, 3x3: fan-out 576
    expected = math.sqrt(2 / (64 * 9))
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


@pytest.mark.parametrize('depth, widen_factor', [(10, 1), (16, 2)])
def test_wide_resnet_forward(depth, widen_factor):
    model = WideResNet(depth=depth, widen_factor=widen_factor, drop_rate=0.3)
    model.init_weights()
    out = model(torch.rand(INPUT))
    assert isinstance(out, tuple) and len(out) == 1
    assert out[0].shape == (2, 64 * widen_factor, 8, 8)
    assert (out[0] >= 0).all()  # the last stage ends with BN-ReLU
    blocks = [b for b in model.modules() if isinstance(b, WideBasicBlock)]
    assert len(blocks) == (depth - 4) // 2
    check_every_parameter_learns(model, out[0])


def test_wide_resnet_out_indices():
    model = WideResNet(depth=10, widen_factor=2, out_indices=(0, 1, 2))
    shapes = [tuple(x.shape) for x in model(torch.rand(INPUT))]
    assert shapes == [(2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8)]


def test_wide_resnet_dropout_between_convs():
    model = WideResNet(depth=10, widen_factor=1, drop_rate=0.3)
    block = model.stages[0][0]
    names = [name for name, _ in block.named_children()]
    assert names.index('conv1') < names.index('dropout') < names.index(
        'conv2')
    assert block.dropout.p == 0.3
    x = torch.rand(INPUT)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])
    no_dropout = WideResNet(depth=10, widen_factor=1)
    assert not any(
        isinstance(m, nn.Dropout) for m in no_dropout.modules())


def test_wide_resnet_shortcuts():
    model = WideResNet(depth=16, widen_factor=2)
    strides = [stage[0].shortcut.stride for stage in model.stages]
    assert strides == [(1, 1), (2, 2), (2, 2)]  # 16 -> 32 changes width
    assert all(b.shortcut is None for s in model.stages for b in s[1:])
    # widen factor 1: the first group keeps 16 channels, identity shortcut
    assert WideResNet(depth=10, widen_factor=1).stages[0][0].shortcut is None


def test_wide_resnet_28_10_size():
    """Zagoruyko & Komodakis 2016 give WRN-28-10 36.5M parameters."""
    model = WideResNet(depth=28, widen_factor=10, drop_rate=0.3)
    assert [s[-1].conv2.out_channels for s in model.stages] == [160, 320,
                                                               640]
    assert classifier_params(model) == pytest.approx(36.5e6, rel=0.01)


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=27), 'depth=27 is not supported'),
    (dict(depth=4), 'depth=4 is not supported'),
    (dict(widen_factor=0), 'widen_factor=0 must be a positive integer'),
    (dict(drop_rate=1.0), r'drop_rate=1.0 must be in \[0, 1\)'),
])
def test_wide_resnet_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WideResNet(**kwargs)

"""CIFARSEResNet and CIFARResNeXt against the released ISDA CIFAR networks.

The released sizes are counted by formulas written from the released
networks' structure, and one block of each is re-stated in float64.
"""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmpretrain.models.utils import SELayer
from mmpretrain.registry import MODELS
from torch import nn

from isda_mm.classification.backbones import (
    CIFARResNeXt,
    CIFARSEBasicBlock,
    CIFARSEResNet,
)

INPUT = (2, 3, 32, 32)


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Small convolutions on a busy 2-core machine: threads only wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def released_se_resnet_params(depth, num_classes, reduction=16):
    """SE-ResNet-depth + Linear(64, classes) as the released code builds it.

    Stem conv3x3(3, 16) + BN. A block ``cin -> c`` has conv3x3(cin, c),
    BN, conv3x3(c, c), BN, an SE of two bias-free linears ``c -> c // r
    -> c``, and, where the width changes (with the stride), a 1x1 conv +
    BN shortcut.
    """
    total = 3 * 16 * 9 + 2 * 16
    cin = 16
    for c in (16, 32, 64):
        for _ in range((depth - 2) // 6):
            total += 9 * cin * c + 9 * c * c + 4 * c + 2 * c * (c // reduction)
            if cin != c:
                total += cin * c + 2 * c
            cin = c
    return total + 64 * num_classes + num_classes


def released_resnext_params(depth, cardinality, base_width, num_classes):
    """ResNeXt-depth (C x base_width d) + Linear(1024, classes), released.

    Stem conv3x3(3, 64) + BN. A block of ``planes`` (64, 128, 256) has
    ``D = floor(planes * base_width / 64)`` channels per group: conv1x1(cin,
    C*D), BN, grouped conv3x3(C*D, C*D), BN, conv1x1(C*D, 4*planes), BN;
    the first block of every stage has a 1x1 conv + BN shortcut.
    """
    total = 3 * 64 * 9 + 2 * 64
    cin = 64
    for planes in (64, 128, 256):
        width = cardinality * (planes * base_width // 64)
        out = 4 * planes
        for i in range((depth - 2) // 9):
            total += (cin * width + 2 * width + 9 * width *
                      (width // cardinality) + 2 * width + width * out +
                      2 * out)
            if i == 0:
                total += cin * out + 2 * out
            cin = out
    return total + 1024 * num_classes + num_classes


def with_classifier(backbone, channels, num_classes):
    return num_params(backbone) + (channels + 1) * num_classes


def check_every_parameter_learns(model, outs):
    sum(out.sum() for out in outs).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name


def randomize_norms(model):
    """Non-trivial BN statistics and affine parameters, for eval mode."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def bn(x, norm):
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    return x * scale[:, None, None] + shift[:, None, None]


@pytest.mark.parametrize('cfg', [
    dict(type='CIFARSEResNet', depth=20),
    dict(type='CIFARResNeXt', depth=29, groups=2, width_per_group=4),
])
def test_registered_in_mmpretrain(cfg):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    assert type(model).__name__ == cfg['type']
    assert MODELS.get(cfg['type']) is type(model)


@pytest.mark.parametrize('num_classes', [10, 100])
def test_se_resnet_110_size(num_classes):
    """Table 2 of the ISDA paper: SE-ResNet-110 has 1.7M parameters."""
    count = with_classifier(CIFARSEResNet(depth=110), 64, num_classes)
    assert count == released_se_resnet_params(110, num_classes)
    assert round(count / 1e6, 1) == 1.7


@pytest.mark.parametrize('depth', [20, 56])
def test_se_resnet_size_other_depths(depth):
    count = with_classifier(CIFARSEResNet(depth=depth, se_ratio=8), 64, 10)
    assert count == released_se_resnet_params(depth, 10, reduction=8)


def test_se_resnet_110_shapes():
    model = CIFARSEResNet(depth=110, out_indices=(0, 1, 2))
    blocks = [m for m in model.modules() if isinstance(m, CIFARSEBasicBlock)]
    assert len(blocks) == 54
    assert [b.se.conv1.conv.out_channels
            for b in blocks[::18]] == [1, 2, 4]  # 16, 32, 64 // 16
    with torch.no_grad():
        shapes = [tuple(x.shape) for x in model(torch.rand(INPUT))]
    assert shapes == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert CIFARSEResNet(depth=110).out_indices == (2, )


def test_se_block_matches_float64_restatement():
    """conv-BN-ReLU-conv-BN, SE (no bias), + (1x1 conv-BN shortcut), ReLU."""
    block = CIFARSEBasicBlock(16, 32, stride=2, se_ratio=16).double().eval()
    randomize_norms(block)
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        out = F.relu(bn(F.conv2d(x, block.conv1.weight, stride=2,
                                 padding=1), block.norm1))
        out = bn(F.conv2d(out, block.conv2.weight, padding=1), block.norm2)
        squeeze = block.se.conv1.conv.weight.flatten(1)  # (2, 32)
        excite = block.se.conv2.conv.weight.flatten(1)  # (32, 2)
        scale = torch.sigmoid(F.relu(out.mean((2, 3)) @ squeeze.T) @ excite.T)
        conv, norm = block.downsample
        shortcut = bn(F.conv2d(x, conv.weight, stride=2), norm)
        expected = F.relu(out * scale[:, :, None, None] + shortcut)
        assert torch.allclose(block(x), expected, rtol=1e-10, atol=1e-12)
    assert block.se.conv1.conv.bias is None
    assert block.se.conv2.conv.bias is None


def test_se_layers_start_from_linear_default_init():
    model = CIFARSEResNet(depth=20)
    model.init_weights()
    for m in model.modules():
        if isinstance(m, SELayer):
            for conv in (m.conv1.conv, m.conv2.conv):
                bound = 1 / conv.in_channels**0.5  # nn.Linear's
                assert conv.weight.abs().max() <= bound
    conv = model.stages[2][1].conv1  # the convolutions stay Kaiming fan-out
    assert conv.weight.std().item() == pytest.approx((2 / 576)**0.5, rel=0.1)


def test_se_pretrained_init_keeps_checkpoint(tmp_path):
    trained = CIFARSEResNet(depth=20)
    for param in trained.parameters():
        param.data.uniform_(2, 3)  # outside every init's range
    torch.save(trained.state_dict(), tmp_path / 'se.pth')
    model = CIFARSEResNet(
        depth=20,
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'se.pth')))
    model.init_weights()
    for (name, param), ref in zip(model.named_parameters(),
                                  trained.parameters()):
        assert torch.equal(param, ref), name


@pytest.mark.parametrize('num_classes', [10, 100])
def test_resnext_29_8x64d_size(num_classes):
    """Table 2 of the ISDA paper: ResNeXt-29, 8x64d has 34.4M parameters
    (the count with the 10-way classifier; the 100-way one adds 92K)."""
    count = with_classifier(CIFARResNeXt(), 1024, num_classes)
    assert count == released_resnext_params(29, 8, 64, num_classes)
    assert round(count / 1e6, 1) == (34.4 if num_classes == 10 else 34.5)


def test_resnext_29_16x64d_size():
    model = CIFARResNeXt(groups=16)
    layers = (model.layer1, model.layer2, model.layer3)
    assert {block.conv2.groups for layer in layers for block in layer} == {16}
    assert [layer[0].conv2.out_channels for layer in layers] == [1024, 2048,
                                                                4096]
    count = with_classifier(model, 1024, 10)
    assert count == released_resnext_params(29, 16, 64, 10)
    assert round(count / 1e6, 1) == 68.2


def test_resnext_29_8x64d_shapes():
    model = CIFARResNeXt(out_indices=(0, 1, 2))
    layers = (model.layer1, model.layer2, model.layer3)
    assert [len(layer) for layer in layers] == [3, 3, 3]
    assert [layer[0].conv2.out_channels for layer in layers] == [512, 1024,
                                                                2048]
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.conv1.out_channels == 64
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    with torch.no_grad():
        shapes = [tuple(x.shape) for x in model(torch.rand(INPUT))]
    assert shapes == [(2, 256, 32, 32), (2, 512, 16, 16), (2, 1024, 8, 8)]


def test_resnext_block_matches_float64_restatement():
    """1x1-BN-ReLU, grouped 3x3 with the stride-BN-ReLU, 1x1-BN, + (1x1
    conv with stride-BN shortcut), ReLU: the second stage's first block."""
    model = CIFARResNeXt(depth=11, groups=2, width_per_group=4).double()
    block = model.layer2[0].eval()
    randomize_norms(block)
    x = torch.randn(2, 256, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        out = F.relu(bn(F.conv2d(x, block.conv1.weight), block.norm1))
        assert out.shape[1] == 2 * 8  # groups * (128 * 4 // 64)
        out = F.relu(bn(F.conv2d(out, block.conv2.weight, stride=2,
                                 padding=1, groups=2), block.norm2))
        out = bn(F.conv2d(out, block.conv3.weight), block.norm3)
        conv, norm = block.downsample
        shortcut = bn(F.conv2d(x, conv.weight, stride=2), norm)
        expected = F.relu(out + shortcut)
        assert torch.allclose(block(x), expected, rtol=1e-10, atol=1e-12)


def test_resnext_init_as_released():
    model = CIFARResNeXt(depth=11, groups=2, width_per_group=4)
    model.init_weights()
    for m in model.modules():  # no zero-initialized last BN
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    conv = model.layer3[0].conv3  # fan-out 1024
    assert conv.weight.std().item() == pytest.approx((2 / 1024)**0.5,
                                                     rel=0.1)


@pytest.mark.parametrize('out_indices, expected', [((0, -1), (0, 2)),
                                                   ((2, 0), (0, 2)),
                                                   (1, (1, ))])
def test_resnext_out_indices(out_indices, expected):
    model = CIFARResNeXt(
        depth=11, groups=2, width_per_group=4, out_indices=out_indices)
    assert model.out_indices == expected
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 32, 32))
    channels = {0: 256, 1: 512, 2: 1024}
    assert [x.shape[1] for x in outs] == [channels[i] for i in expected]


def test_se_resnet_out_indices():
    model = CIFARSEResNet(depth=20, out_indices=(0, -2))
    assert model.out_indices == (0, 1)
    with torch.no_grad():
        shapes = [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
    assert shapes == [(1, 16, 32, 32), (1, 32, 16, 16)]


@pytest.mark.parametrize('cls', [CIFARSEResNet, CIFARResNeXt])
@pytest.mark.parametrize('out_indices', [(3, ), ()])
def test_bad_out_indices(cls, out_indices):
    match = 'out_indices is empty' if not out_indices else 'out_indices='
    kwargs = dict(depth=20) if cls is CIFARSEResNet else dict()
    with pytest.raises(ValueError, match=f'{cls.__name__}: {match}'):
        cls(out_indices=out_indices, **kwargs)


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=18), 'CIFARSEResNet: depth=18 .* set backbone.depth'),
    (dict(depth=29), 'CIFARSEResNet: depth=29 .* set backbone.depth'),
    (dict(depth=20, se_ratio=0), 'se_ratio=0 .* set backbone.se_ratio'),
    (dict(depth=20, se_ratio=17), 'se_ratio=17 .* set backbone.se_ratio'),
    (dict(depth=20, se_ratio=4.0), 'se_ratio=4.0 .* set backbone.se_ratio'),
])
def test_se_resnet_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CIFARSEResNet(**kwargs)


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=50), 'CIFARResNeXt: depth=50 .* set backbone.depth'),
    (dict(depth=28), 'depth=28 .* set backbone.depth'),
    (dict(depth=2), 'depth=2 .* set backbone.depth'),
    (dict(depth=110), 'depth=110 .* set backbone.depth'),
    (dict(groups=0), 'groups=0 .* set backbone.groups'),
    (dict(groups=1), 'groups=1 .* set backbone.groups'),
    (dict(groups=8.0), 'groups=8.0 .* set backbone.groups'),
    (dict(width_per_group=0),
     'width_per_group=0 .* set backbone.width_per_group'),
])
def test_resnext_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CIFARResNeXt(**kwargs)


@pytest.mark.parametrize('model', [
    lambda: CIFARSEResNet(depth=20, out_indices=(0, 1, 2)),
    lambda: CIFARResNeXt(
        depth=11, groups=2, width_per_group=4, out_indices=(0, 1, 2)),
], ids=['se_resnet20', 'resnext11_2x4d'])
def test_every_parameter_learns(model):
    model = model()
    model.init_weights()
    model.train()
    outs = model(torch.rand(INPUT))
    check_every_parameter_learns(model, outs)

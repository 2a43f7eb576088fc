"""CIFARDenseNet (DenseNet-BC for CIFAR) and the DenseNet-BC-265 config.

The released ISDA code builds DenseNet-BC-100-12 for CIFAR as: a 3x3
convolution with 24 filters, three dense blocks of 16 layers (each
BN-ReLU-conv1x1 with 48 filters, BN-ReLU-conv3x3 with 12, concatenated to
its input), between blocks a transition BN-ReLU-conv1x1 to
``int(0.5 * channels)`` and 2x2 average pooling, then BN and ReLU before
global pooling and ``Linear(342, classes)``. The references below restate
that structure; the counts 769,162 and 800,032 were measured with the
released network (``Image classification on CIFAR/networks/densenet_bc.py``
plus ``nn.Linear(feature_num, classes)``) on 2026-12-03.
"""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.models.backbones.densenet import DenseLayer, DenseTransition
from mmpretrain.registry import MODELS
from mmpretrain.utils import register_all_modules
from torch import nn

from isda_mm.classification.backbones import CIFARDenseNet

ROOT = Path(__file__).parents[2]
IMAGENET = ROOT / 'configs' / 'classification' / 'imagenet'
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


def reference_size(block_layers, growth, init_channels, stem_kernel,
                   num_classes, stem_norm=False):
    """Parameters of a released DenseNet-BC and its classifier, and the
    channels after each block's transition (the last: after the final BN).
    """
    count = 3 * init_channels * stem_kernel**2
    count += 2 * init_channels if stem_norm else 0
    channels, widths = init_channels, []
    for i, layers in enumerate(block_layers):
        for _ in range(layers):
            bottleneck = 4 * growth
            count += 2 * channels + channels * bottleneck  # BN, conv1x1
            count += 2 * bottleneck + bottleneck * growth * 9  # BN, conv3x3
            channels += growth
        count += 2 * channels  # the transition's (or the final) BN
        if i < len(block_layers) - 1:
            count += channels * int(channels * 0.5)
            channels = int(channels * 0.5)
        widths.append(channels)
    return count + (channels + 1) * num_classes, widths


def randomize_norms(model, seed=0):
    """Fresh norms are identities, which would hide a misplaced one."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.2, generator=generator)
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)


def bn_relu(x, norm):
    return F.relu(
        F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight,
                     norm.bias, training=False, eps=norm.eps))


def reference_forward(model, x):
    """DenseNet-BC in eval mode, step by step, from the model's tensors."""
    x = F.conv2d(x, model.stem[0].weight, padding=1)
    for stage, transition in zip(model.stages, model.transitions):
        features = [x]
        for layer in stage.block:
            h = bn_relu(torch.cat(features, 1), layer.norm1)
            h = F.conv2d(h, layer.conv1.weight)
            h = F.conv2d(bn_relu(h, layer.norm2), layer.conv2.weight,
                         padding=1)
            features.append(h)
        x = torch.cat(features, 1)
        if isinstance(transition, DenseTransition):
            x = F.conv2d(bn_relu(x, transition.norm), transition.conv.weight)
            x = F.avg_pool2d(x, 2)
        else:  # the final BN-ReLU
            x = bn_relu(x, transition[0])
    return x


def test_registered_in_mmpretrain():
    assert MODELS.get('CIFARDenseNet') is CIFARDenseNet
    model = MODELS.build(dict(type='CIFARDenseNet', depth=40))
    assert isinstance(model, CIFARDenseNet)


@pytest.mark.parametrize('num_classes, released', [(10, 769_162),
                                                  (100, 800_032)])
def test_densenet_bc_100_12_size(num_classes, released):
    """ISDA paper, Table 2: DenseNet-BC-100-12 has 0.8M parameters."""
    model = CIFARDenseNet(depth=100, growth_rate=12)
    count = num_params(model) + num_params(nn.Linear(342, num_classes))
    expected, _ = reference_size((16, 16, 16), 12, 24, 3, num_classes)
    assert count == expected == released
    assert round(count / 1e6, 1) == 0.8


def test_stage_shapes_match_released():
    model = CIFARDenseNet(out_indices=(0, 1, 2))
    _, widths = reference_size((16, 16, 16), 12, 24, 3, 10)
    assert widths == [108, 150, 342]
    shapes = [tuple(x.shape) for x in model(torch.rand(1, 3, 32, 32))]
    assert shapes == [(1, 108, 16, 16), (1, 150, 8, 8), (1, 342, 8, 8)]
    default = CIFARDenseNet(depth=40)(torch.rand(INPUT))
    assert len(default) == 1 and default[0].shape == (2, 132, 8, 8)
    assert (default[0] >= 0).all()  # after the final BN-ReLU


def test_cifar_layout():
    model = CIFARDenseNet(depth=40)
    stem = model.stem[0]
    assert (stem.kernel_size, stem.stride, stem.out_channels) == ((3, 3),
                                                                  (1, 1), 24)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert [len(stage.block) for stage in model.stages] == [6, 6, 6]
    layer = model.stages[1].block[2]
    assert isinstance(layer, DenseLayer)
    assert (layer.conv1.out_channels, layer.conv2.out_channels) == (48, 12)
    assert [t.conv.out_channels for t in model.transitions[:2]] == [48, 60]


def test_forward_matches_float64_reference():
    model = CIFARDenseNet(depth=16, compression=0.5).double()
    model.init_weights()
    randomize_norms(model)
    model.eval()
    x = torch.rand(INPUT, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], reference_forward(model, x))


def test_compression_growth_and_stem():
    model = CIFARDenseNet(depth=10, growth_rate=8, compression=0.75,
                          init_channels=16, bn_size=2, in_channels=1,
                          out_indices=(0, 1, 2))
    # 16 + 8 = 24 -> 18, 18 + 8 = 26 -> 19, 19 + 8 = 27
    shapes = [x.shape[1] for x in model(torch.rand(1, 1, 32, 32))]
    assert shapes == [18, 19, 27]
    assert model.stages[0].block[0].conv1.out_channels == 16


def test_out_indices_in_stage_order():
    model = CIFARDenseNet(depth=10, out_indices=(-1, 0))
    assert model.out_indices == (0, 2)
    # 24 + 12 = 36 -> 18, 18 + 12 = 30 -> 15, 15 + 12 = 27
    assert [x.shape[1] for x in model(torch.rand(INPUT))] == [18, 27]


def test_dropout_only_in_training():
    model = CIFARDenseNet(depth=16, drop_rate=0.5)
    layer = model.stages[2].block[1]
    outputs = []
    layer.register_forward_hook(lambda m, i, out: outputs.append(out))
    x = torch.rand(INPUT)
    assert model.eval() is model  # mmpretrain's DenseNet.train returns None
    first, second = model(x)[0], model(x)[0]
    assert torch.equal(first, second)
    assert (outputs[-1] == 0).float().mean() < 0.1
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])
    assert 0.35 < (outputs[-1] == 0).float().mean() < 0.65
    assert all(layer.drop_rate == 0 for stage in CIFARDenseNet(
        depth=16).stages for layer in stage.block)


def check_every_parameter_learns(model):
    model(torch.rand(INPUT))[0].sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_backward_every_parameter():
    model = CIFARDenseNet(depth=16, drop_rate=0.2)
    model.init_weights()
    check_every_parameter_learns(model)


# mmpretrain calls torch.utils.checkpoint without use_reentrant
@pytest.mark.filterwarnings('ignore:torch.utils.checkpoint')
def test_memory_efficient_same_gradients():
    torch.manual_seed(0)
    plain = CIFARDenseNet(depth=16)
    plain.init_weights()
    efficient = CIFARDenseNet(depth=16, memory_efficient=True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.rand(INPUT)
    for model in (plain, efficient):
        model(x)[0].pow(2).sum().backward()
    for (name, p), q in zip(plain.named_parameters(),
                            efficient.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_released_init():
    model = CIFARDenseNet(depth=16)
    model.init_weights()
    conv = model.stages[2].block[0].conv1  # 1x1, 48 filters: fan-out 48
    assert conv.weight.std().item() == pytest.approx(
        math.sqrt(2 / 48), rel=0.1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=99), 'depth=99 is not supported; set backbone.depth'),
    (dict(depth=4), 'depth=4 is not supported'),
    (dict(depth=100.0), r'depth=100.0 is not supported'),
    (dict(growth_rate=0), 'growth_rate=0 must be a positive integer; set '
     'backbone.growth_rate'),
    (dict(bn_size=1.5), 'bn_size=1.5 must be a positive integer'),
    (dict(init_channels=-24), 'init_channels=-24 must be'),
    (dict(compression=0), r'compression=0 must be in \(0, 1\]; set '
     'backbone.compression'),
    (dict(compression=1.5), r'compression=1.5 must be in \(0, 1\]'),
    (dict(drop_rate=1.0), r'drop_rate=1.0 must be in \[0, 1\); set '
     'backbone.drop_rate'),
    (dict(out_indices=(3, )), 'out_indices=.* has 3 stages'),
    (dict(out_indices=()), 'out_indices is empty'),
])
def test_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CIFARDenseNet(**kwargs)


def test_densenet265_config_size():
    """ISDA paper, ImageNet table: DenseNet-BC-265 has 33.3M parameters."""
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(IMAGENET / 'densenet265_8xb64-coslr-300e_in1k.py')
    model = MODELS.build(cfg.model)
    expected, widths = reference_size((6, 12, 64, 48), 32, 64, 7, 1000,
                                      stem_norm=True)
    assert widths[-1] == cfg.model.head.in_channels == 2688
    assert num_params(model) == expected == 33_337_704
    assert round(num_params(model) / 1e6, 1) == 33.3
    model.eval()
    with torch.no_grad():
        features = model(torch.rand(1, 3, 64, 64), mode='tensor')
    assert features.shape == (1, 1000)

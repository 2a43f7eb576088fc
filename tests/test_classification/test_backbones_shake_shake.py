"""ShakeShakeResNet: the released network's sizes and shapes, the mixing."""
import math

import pytest
import torch
from mmpretrain.registry import MODELS
from torch import nn

from isda_mm.classification.backbones import (
    ShakeShakeBlock,
    ShakeShakeResNet,
)
from isda_mm.classification.backbones.shake_shake import (
    ShakeShakeFunction,
    ShakeShakeShortcut,
    shake_shake,
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


def trained_params(depth, width, num_classes):
    """Parameters of Shake-Shake-depth (2 x width d) + Linear(4w, classes).

    The stem is a 3x3 conv with bias to 16 channels and a BN. A block
    ``cin -> cout`` has two branches conv3x3(cin, cout)-BN-conv3x3(cout,
    cout)-BN, plus, when ``cin != cout``, two 1x1 convs ``cin -> cout / 2``
    and a BN on their concatenation.
    """
    total = 3 * 16 * 9 + 16 + 2 * 16
    cin = 16
    for cout in (width, 2 * width, 4 * width):
        for _ in range((depth - 2) // 6):
            total += 2 * (9 * cin * cout + 2 * cout + 9 * cout * cout +
                          2 * cout)
            if cin != cout:
                total += 2 * cin * (cout // 2) + 2 * cout
            cin = cout
    return total + (4 * width + 1) * num_classes


def released_params(depth, width, num_classes):
    """What the released code counts: its ``a and None or b`` builds a
    shortcut (two 1x1 convs + BN) in every block, also where the forward
    pass uses the identity, so blocks that keep the width carry one more,
    never used."""
    unused = 0
    cin = 16
    for cout in (width, 2 * width, 4 * width):
        for _ in range((depth - 2) // 6):
            if cin == cout:
                unused += 2 * cout * (cout // 2) + 2 * cout
            cin = cout
    return trained_params(depth, width, num_classes) + unused


def test_registered_in_mmpretrain():
    assert MODELS.get('ShakeShakeResNet') is ShakeShakeResNet
    model = MODELS.build(
        dict(type='ShakeShakeResNet', depth=8, base_channels=16))
    assert isinstance(model, ShakeShakeResNet)


# (width, classes): this backbone + Linear, and the released network
# + Linear as its train.py prints them (counted by building it)
SIZES = {
    (32, 10): (2_923_178, 2_989_034),
    (32, 100): (2_934_788, 3_000_644),
    (112, 10): (35_640_458, 36_435_434),
    (112, 100): (35_680_868, 36_475_844),
}


@pytest.mark.parametrize('width, published', [(32, 3.0e6), (112, 36.4e6)])
def test_size(width, published):
    """ISDA Table 2 prints the released code's CIFAR-10 counts, 3.0M and
    36.4M, which include the unused shortcuts; this backbone builds the network
    that is trained (Gastaldi 2017 prints 2.9M for 2x32d)."""
    model = ShakeShakeResNet(depth=26, base_channels=width)
    for num_classes in (10, 100):
        ours, released = SIZES[width, num_classes]
        count = num_params(model) + (4 * width + 1) * num_classes
        assert count == trained_params(26, width, num_classes) == ours
        assert released_params(26, width, num_classes) == released
    # the table's one figure per network is the 10-class count
    assert round(SIZES[width, 10][1], -5) == published


def test_stage_shapes():
    """The released forward: (B, w, 32, 32), (B, 2w, 16, 16), then the
    final ReLU on (B, 4w, 8, 8); ``feature_num = 4w`` (128 for 2x32d)."""
    model = ShakeShakeResNet(out_indices=(0, 1, -1))
    assert model.out_indices == (0, 1, 2)
    outs = model(torch.rand(INPUT))
    assert [tuple(x.shape) for x in outs] == [(2, 32, 32, 32),
                                             (2, 64, 16, 16),
                                             (2, 128, 8, 8)]
    assert (outs[-1] >= 0).all() and (outs[0] < 0).any()
    blocks = [m for m in model.modules() if isinstance(m, ShakeShakeBlock)]
    assert len(blocks) == 12  # (26 - 2) / 6 = 4 per stage
    assert model.stages[2][-1].branch2[-2].out_channels == 128


def test_structure():
    model = ShakeShakeResNet(depth=8, base_channels=16)
    conv, norm = model.stem
    assert conv.out_channels == 16 and conv.bias is not None
    assert isinstance(norm, nn.BatchNorm2d)
    # base_channels=16 keeps the stem's width: identity shortcut
    assert model.stages[0][0].shortcut is None
    for stage, stride in zip(model.stages[1:], (2, 2)):
        assert isinstance(stage[0].shortcut, ShakeShakeShortcut)
        assert stage[0].shortcut.stride == stride
        assert stage[0].branch1[1].stride == (stride, stride)
    kinds = [type(m) for m in model.stages[0][0].branch1]
    assert kinds == [
        nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d,
        nn.BatchNorm2d
    ]


def test_shortcut_matches_reference():
    """ReLU, a 1x1 conv on pixels (0, 0), (s, s), ..., another on the map
    shifted by one pixel (zero at the far edge), concat, BN."""
    torch.manual_seed(0)
    for stride in (1, 2):
        shortcut = ShakeShakeShortcut(4, 6, stride).double().eval()
        norm = shortcut.norm
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.data.uniform_(0.5, 2)
        norm.bias.data.uniform_(-1, 1)
        x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
        h = x.clamp(min=0)
        shifted = torch.zeros_like(h)
        shifted[:, :, :-1, :-1] = h[:, :, 1:, 1:]
        w1 = shortcut.conv1.weight[:, :, 0, 0]
        w2 = shortcut.conv2.weight[:, :, 0, 0]
        paths = torch.cat([
            torch.einsum('oc,bchw->bohw', w1, h[:, :, ::stride, ::stride]),
            torch.einsum('oc,bchw->bohw', w2,
                         shifted[:, :, ::stride, ::stride])
        ], 1)
        view = (1, -1, 1, 1)
        expected = ((paths - norm.running_mean.view(view)) /
                    (norm.running_var.view(view) + norm.eps).sqrt() *
                    norm.weight.view(view) + norm.bias.view(view))
        with torch.no_grad():
            torch.testing.assert_close(shortcut(x), expected)


def test_eval_is_branch_mean():
    torch.manual_seed(0)
    model = ShakeShakeResNet(depth=8, base_channels=8)
    model.eval()  # BaseBackbone.train returns None, so no chaining
    x = torch.randn(INPUT)
    with torch.no_grad():
        assert torch.equal(model(x)[0], model(x)[0])
        h = model.stem(x)
        for stage in model.stages:
            for block in stage:
                expected = 0.5 * (block.branch1(h) + block.branch2(h))
                expected += h if block.shortcut is None else block.shortcut(
                    h)
                h = block(h)
                torch.testing.assert_close(h, expected)
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


def test_function_against_reference():
    """Forward ``a * x1 + (1 - a) * x2``; gradients ``b * g`` and
    ``(1 - b) * g``, per image, for given ``a`` and ``b``."""
    torch.manual_seed(0)
    x1 = torch.randn(3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor([0.1, 0.5, 0.8], dtype=torch.float64)
    beta = torch.tensor([0.9, 0.3, 0.2], dtype=torch.float64)
    g = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    out = ShakeShakeFunction.apply(x1, x2, alpha, beta)
    out.backward(g)
    for i in range(3):
        a, b = alpha[i].item(), beta[i].item()
        torch.testing.assert_close(out[i], a * x1[i] + (1 - a) * x2[i])
        torch.testing.assert_close(x1.grad[i], b * g[i])
        torch.testing.assert_close(x2.grad[i], (1 - b) * g[i])
    # with beta = alpha the backward is the forward's true gradient
    assert torch.autograd.gradcheck(
        ShakeShakeFunction.apply, (x1.detach().requires_grad_(),
                                   x2.detach().requires_grad_(), alpha,
                                   alpha.clone()))


def test_training_draws_independent_uniforms_per_image():
    torch.manual_seed(0)
    n = 2000
    x1 = torch.ones(n, 3, 2, 2, requires_grad=True)
    x2 = torch.zeros(n, 3, 2, 2, requires_grad=True)
    out = shake_shake(x1, x2, training=True)
    out.backward(torch.ones_like(out))
    alpha = out.flatten(1)
    beta = x1.grad.flatten(1)
    # one weight per image, shared by its channels and pixels
    assert torch.equal(alpha, alpha[:, :1].expand_as(alpha))
    assert torch.equal(beta, beta[:, :1].expand_as(beta))
    torch.testing.assert_close(x2.grad, 1 - x1.grad)
    alpha, beta = alpha[:, 0], beta[:, 0]
    for w in (alpha, beta):
        assert 0 <= w.min() and w.max() < 1
        assert w.mean().item() == pytest.approx(0.5, abs=0.03)
        assert w.var().item() == pytest.approx(1 / 12, abs=0.01)
    assert len(set(alpha.tolist())) == n
    corr = torch.corrcoef(torch.stack([alpha, beta]))[0, 1].item()
    assert abs(corr) < 0.1
    # at test time: the mean, and half the gradient to each branch
    x1.grad = x2.grad = None
    out = shake_shake(x1, x2, training=False)
    out.sum().backward()
    assert torch.all(out == 0.5) and torch.all(x1.grad == 0.5)


def test_every_parameter_learns():
    model = ShakeShakeResNet()
    model.init_weights()
    model.train()
    out = model(torch.rand(INPUT))[0]
    out.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name


def test_kaiming_fan_in_init():
    model = ShakeShakeResNet()
    model.init_weights()
    conv = model.stages[1][0].branch1[1]  # 32 -> 64, 3x3: fan-in 288
    assert conv.weight.std().item() == pytest.approx(
        math.sqrt(2 / (32 * 9)), rel=0.1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=27), 'depth=27 is not supported; set backbone.depth'),
    (dict(depth=2), 'depth=2 is not supported; set backbone.depth'),
    (dict(depth='26'), 'depth=26 is not supported; set backbone.depth'),
    (dict(base_channels=33), 'base_channels=33 must be a positive even '
     'integer.*set backbone.base_channels'),
    (dict(base_channels=0), 'base_channels=0 must be'),
    (dict(out_indices=(3, )), 'out_indices='),
])
def test_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShakeShakeResNet(**kwargs)

"""tools/model_converters/isda_to_mm.py turns torchvision ImageNet networks
into mmpretrain classifiers and mmdet backbones that compute the same."""
import argparse
import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS as CLS_MODELS
from torch.testing import assert_close

import isda_mm  # noqa: F401

ROOT = Path(__file__).parents[2]
_spec = importlib.util.spec_from_file_location(
    'isda_to_mm', ROOT / 'tools' / 'model_converters' / 'isda_to_mm.py')
converter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(converter)

# torchvision name -> our ImageNet baseline config (its model is the target)
CLS_CONFIGS = {
    'resnet50': 'resnet50_8xb64-coslr-300e_in1k.py',
    'resnext50_32x4d': 'resnext50-32x4d_8xb64-coslr-300e_in1k.py',
    'densenet121': 'densenet121_8xb64-coslr-300e_in1k.py',
}
DET_BACKBONES = {
    'resnet50': dict(type='ResNet', depth=50),
    'resnext50_32x4d': dict(type='ResNeXt', depth=50, groups=32,
                            base_width=4),
}


@pytest.fixture(autouse=True, scope='module')
def _threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core CPU
    yield
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=None)
def reference(name):
    """A torchvision network in eval mode with every norm layer randomised.

    Fresh norm layers are identities (weight 1, bias 0, mean 0, variance
    1), which would hide a norm loaded into the wrong place.
    """
    generator = torch.Generator().manual_seed(0)
    net = getattr(torchvision.models, name)(weights=None)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.2, generator=generator)
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.num_batches_tracked.fill_(7)
            elif isinstance(module, torch.nn.Linear):
                module.bias.normal_(0, 0.1, generator=generator)
    return net.eval()


def state_dict_of(name):
    return dict(reference(name).state_dict())


def image():
    return torch.randn(1, 3, 64, 64,
                       generator=torch.Generator().manual_seed(1))


def save_source(state_dict, path):
    torch.save(state_dict, path)
    return str(path)


def run_converter(tmp_path, state_dict, *options):
    src = save_source(state_dict, tmp_path / 'released.pth')
    dst = str(tmp_path / 'converted' / 'model.pth')
    converter.main([src, dst, *options])
    return dst


def torchvision_stages(net, x):
    """The outputs of layer1..layer4 of a torchvision ResNet."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    outs = []
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = stage(x)
        outs.append(x)
    return outs


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_mmpretrain_classifier_matches_torchvision(name, tmp_path):
    dst = run_converter(tmp_path, state_dict_of(name))
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(checkpoint) == {'state_dict', 'meta'}
    assert checkpoint['meta']['arch'] == name
    assert checkpoint['meta']['format'] == 'mmpretrain'
    assert checkpoint['meta']['source'] == 'released.pth'
    assert all(key.startswith(('backbone.', 'head.fc.'))
               for key in checkpoint['state_dict'])

    cfg = Config.fromfile(
        ROOT / 'configs' / 'classification' / 'imagenet' / CLS_CONFIGS[name])
    assert checkpoint['meta']['backbone']['type'] == cfg.model.backbone.type
    model = CLS_MODELS.build(cfg.model).eval()
    load_checkpoint(model, dst, map_location='cpu', strict=True)
    x = image()
    with torch.no_grad():
        assert_close(model(x, mode='tensor'), reference(name)(x))


@pytest.mark.parametrize('name', DET_BACKBONES)
def test_mmdet_backbone_matches_torchvision(name, tmp_path):
    dst = run_converter(tmp_path, state_dict_of(name), '--format', 'mmdet')
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    assert checkpoint['meta']['format'] == 'mmdet'
    assert not any(key.startswith('fc.') for key in checkpoint['state_dict'])
    backbone_cfg = dict(DET_BACKBONES[name], _scope_='mmdet')
    assert checkpoint['meta']['backbone'] == DET_BACKBONES[name]

    backbone = DET_MODELS.build(backbone_cfg)
    backbone.eval()  # mmdet's ResNet.train returns None, so no chaining
    load_checkpoint(backbone, dst, map_location='cpu', strict=True)
    x = image()
    with torch.no_grad():
        outs = backbone(x)
        expected = torchvision_stages(reference(name), x)
    assert len(outs) == 4
    for out, ref in zip(outs, expected):
        assert_close(out, ref)


def test_mmdet_checkpoint_through_init_cfg(tmp_path):
    """What a detector config does with an mmdet-format checkpoint."""
    dst = run_converter(tmp_path, state_dict_of('resnet50'), '--format',
                        'mmdet')
    backbone = DET_MODELS.build(
        dict(type='ResNet', depth=50, _scope_='mmdet',
             init_cfg=dict(type='Pretrained', checkpoint=dst)))
    backbone.init_weights()
    expected = state_dict_of('resnet50')
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_dataparallel_training_checkpoint(tmp_path):
    """Nested under 'state_dict', 'module.' prefixes, training records."""
    plain = state_dict_of('resnet50')
    wrapped = dict(
        epoch=300,
        arch='resnet50',
        best_prec1=np.float64(78.0),
        best_prec5=torch.tensor(94.0),
        state_dict={'module.' + k: v for k, v in plain.items()})
    src = save_source(wrapped, tmp_path / 'checkpoint.pth.tar')
    state_dict = converter.load_source(src)
    assert list(state_dict) == list(plain)
    converted, meta = converter.convert(state_dict)
    expected, _ = converter.convert(plain)
    assert list(converted) == list(expected)
    assert all(torch.equal(converted[k], expected[k]) for k in expected)
    assert meta['arch'] == 'resnet50'


def test_old_densenet_key_pattern():
    """torchvision < 0.3 saved 'denselayer1.norm.1' for 'denselayer1.norm1'.
    """
    current = state_dict_of('densenet121')
    old = {}
    for key, value in current.items():
        if '.denselayer' in key:
            for part in ('norm1', 'norm2', 'conv1', 'conv2'):
                key = key.replace(f'.{part}.', f'.{part[:-1]}.{part[-1]}.')
        old[key] = value
    assert 'features.denseblock1.denselayer1.norm.1.weight' in old
    converted_old, meta = converter.convert(old)
    converted, _ = converter.convert(current)
    assert list(converted_old) == list(converted)
    assert all(converted_old[k] is converted[k] for k in converted)
    assert meta['arch'] == 'densenet121'


@pytest.mark.parametrize('name, stray, target', [
    ('resnet50', 'isda.CoVariance', 'mmpretrain'),
    ('resnet50', 'isda.CoVariance', 'mmdet'),
    ('resnet50', 'layer2.0.se.fc1.weight', 'mmdet'),
    ('resnet50', 'fc.extra', 'mmdet'),
    ('densenet121', 'features.denseblock1.denselayer1.attn.weight',
     'mmpretrain'),
    ('densenet121', 'classifier.1.weight', 'mmpretrain'),
])
def test_leftover_keys_are_errors(name, stray, target):
    state_dict = dict(state_dict_of(name), **{stray: torch.zeros(2)})
    with pytest.raises(ValueError,
                       match=r'1 key\(s\) .* lost: \[' + re.escape(
                           repr(stray)) + r'\]'):
        converter.convert(state_dict, target)


def test_densenet_to_mmdet_is_an_error(tmp_path):
    src = save_source(state_dict_of('densenet121'), tmp_path / 'dn.pth')
    dst = tmp_path / 'dn_mmdet.pth'
    with pytest.raises(ValueError, match='mmdet has no DenseNet backbone.*'
                       '--format mmpretrain'):
        converter.main([src, str(dst), '--format', 'mmdet'])
    assert not dst.exists()


def test_command_line_error_is_a_message(tmp_path):
    src = save_source(state_dict_of('densenet121'), tmp_path / 'dn.pth')
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'model_converters' /
                             'isda_to_mm.py'), src, str(tmp_path / 'out.pth'),
         '--format', 'mmdet'], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert 'isda_to_mm: error: mmdet has no DenseNet' in result.stderr
    assert 'Traceback' not in result.stderr


def test_missing_classifier():
    backbone_only = {k: v for k, v in state_dict_of('resnet50').items()
                     if not k.startswith('fc.')}
    with pytest.raises(ValueError, match=r'no fc\.weight/bias.*--format '
                       'mmdet'):
        converter.convert(backbone_only, 'mmpretrain')
    converted, _ = converter.convert(backbone_only, 'mmdet')
    assert list(converted) == list(backbone_only)


def test_unknown_networks_are_errors():
    with pytest.raises(ValueError, match='not a torchvision ResNet'):
        converter.convert({'features.0.weight': torch.zeros(1)})
    truncated = {k: v for k, v in state_dict_of('resnet50').items()
                 if not k.startswith('layer3.5.')}
    with pytest.raises(ValueError, match=r'\(3, 4, 5, 3\) bottleneck blocks'
                       ' per stage match no ResNet depth'):
        converter.convert(truncated)
    with pytest.raises(ValueError, match='target=.mmseg.'):
        converter.convert(state_dict_of('resnet50'), 'mmseg')


def test_untrusted_or_odd_files(tmp_path):
    pickled = save_source(
        dict(state_dict=state_dict_of('resnet50'),
             args=argparse.Namespace(lr=0.2)), tmp_path / 'objects.pth')
    with pytest.raises(ValueError, match='weights_only=True.*trust'):
        converter.load_source(pickled)
    optimizer = save_source(dict(epoch=3, lr=0.1), tmp_path / 'other.pth')
    with pytest.raises(ValueError, match=r"not tensors: \['epoch', 'lr'\]"):
        converter.load_source(optimizer)


@functools.lru_cache(maxsize=None)
def released_densenet(block_config, init_channels):
    """A DenseNet as the released ISDA ImageNet code builds it, eval mode.

    Layout of ``Image classification on ImageNet/networks/densenet.py`` in
    the released code, found on 2026-12-03 by listing the state dict of its
    ``densenet121()`` and ``densenet265()``: torchvision's DenseNet keys and
    shapes (``features.conv0`` 7x7, ``norm0``, ``denseblockB.denselayerL.
    norm1/conv1/norm2/conv2``, ``transitionT.norm/conv`` to ``int(0.5 *
    channels)``), except that the final norm is ``features.norm_final``,
    the classifier ``fc``, and the stem has ``num_init_features=24`` filters
    (the factories do not pass 64). Its forward (ReLU, 7x7 average pooling
    at 224x224, ``fc``) is torchvision's with global pooling. So: a
    torchvision DenseNet with that stem, keys renamed.
    """
    generator = torch.Generator().manual_seed(0)
    net = torchvision.models.DenseNet(
        growth_rate=32, block_config=block_config,
        num_init_features=init_channels)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.2, generator=generator)
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(module, torch.nn.Linear):
                module.bias.normal_(0, 0.1, generator=generator)
    state_dict = {
        key.replace('features.norm5.', 'features.norm_final.').replace(
            'classifier.', 'fc.'): value
        for key, value in net.state_dict().items()}
    return net.eval(), state_dict


@pytest.mark.parametrize('block_config, init_channels, name, width', [
    ((6, 12, 64, 48), 24, 'densenet265', 2683),  # the released code's
    ((6, 12, 64, 48), 64, 'densenet265', 2688),  # the paper's 33.3M
    ((6, 12, 24, 16), 24, 'densenet121', 1019),  # the released code's
])
def test_released_densenet_to_mmpretrain(block_config, init_channels, name,
                                         width, tmp_path):
    net, state_dict = released_densenet(block_config, init_channels)
    assert 'features.norm_final.weight' in state_dict
    # DistributedDataParallel, as the released training script saves it
    wrapped = {'module.' + key: value for key, value in state_dict.items()}
    dst = run_converter(tmp_path, wrapped)
    meta = torch.load(dst, map_location='cpu', weights_only=True)['meta']
    assert meta['arch'] == name
    arch = dict(growth_rate=32, depths=list(block_config),
                init_channels=init_channels)
    assert meta['backbone'] == dict(type='DenseNet', arch=arch)
    assert meta['head'] == dict(in_channels=width, num_classes=1000)

    cfg = Config.fromfile(
        ROOT / 'configs' / 'classification' / 'imagenet' /
        'densenet265_8xb64-coslr-300e_in1k.py')
    if init_channels == 64:  # the config takes the checkpoint as it is
        assert cfg.model.backbone.to_dict() == meta['backbone']
        assert cfg.model.head.in_channels == width
    cfg.model.backbone = meta['backbone']
    cfg.model.head.in_channels = meta['head']['in_channels']
    model = CLS_MODELS.build(cfg.model).eval()
    load_checkpoint(model, dst, map_location='cpu', strict=True)
    x = image()
    with torch.no_grad():
        assert_close(model(x, mode='tensor'), net(x))


def test_densenet_aliases_given_twice():
    state_dict = state_dict_of('densenet121')
    state_dict['features.norm_final.weight'] = state_dict[
        'features.norm5.weight']
    with pytest.raises(ValueError, match="'features.norm5.weight' and "
                       "'features.norm_final.weight' of the source both "
                       "convert to 'backbone.transitions.3.0.weight'"):
        converter.convert(state_dict)


def test_densenet_layout_errors():
    gap = {k: v for k, v in state_dict_of('densenet121').items()
           if '.denseblock2.denselayer3.' not in k}
    with pytest.raises(ValueError, match=r'not numbered 1, 2, \.\.\.'):
        converter.describe_densenet(gap)
    odd = dict(state_dict_of('densenet121'))
    key = 'features.denseblock1.denselayer1.conv1.weight'
    odd[key] = odd[key][:100]
    with pytest.raises(ValueError, match='100 filters, no multiple of the '
                       'growth rate 32'):
        converter.describe_densenet(odd)

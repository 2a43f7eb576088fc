"""The configs of ISDA-pretrained backbones under configs/detection/.

Each ISDA-pretrained config (backbone component ``r50-isda``/``r101-isda``)
and its baseline parse and build their detector; the ISDA config is its
baseline with only ``model.backbone.init_cfg`` changed, the baseline is the
mmdet zoo's config, and the ``init_cfg`` really loads an ImageNet checkpoint
converted by tools/model_converters/isda_to_mm.py. (The ISDA RoI-head configs
beside them are tested with their heads.)
"""
import copy
import functools
import importlib.util
import re
from pathlib import Path

import mmdet
import pytest
import torch
import torchvision
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.registry import init_default_scope

import isda_mm  # noqa: F401

ROOT = Path(__file__).parents[2]
CONFIG_DIR = ROOT / 'configs' / 'detection'
ZOO_DIR = Path(mmdet.__file__).parent / '.mim' / 'configs'
PRETRAINED = sorted(p for p in CONFIG_DIR.rglob('*.py')
                    if re.search(r'_r\d+-isda_', p.name))
# Baselines the mmdet 3.3 zoo lacks, composed here from the zoo's parts.
NOT_IN_ZOO = {
    'cascade_rcnn/cascade-rcnn_r50_fpn_ms-3x_coco.py',
    'cascade_rcnn/cascade-rcnn_r101_fpn_ms-3x_coco.py',
}

_spec = importlib.util.spec_from_file_location(
    'isda_to_mm', ROOT / 'tools' / 'model_converters' / 'isda_to_mm.py')
converter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(converter)


def name(path):
    return str(path.relative_to(CONFIG_DIR))


def baseline_of(path):
    return path.with_name(re.sub(r'_(r\d+)-isda_', r'_\1_', path.name))


BASELINES = [baseline_of(p) for p in PRETRAINED]
CONFIGS = sorted(PRETRAINED + BASELINES)


def depth_of(path):
    return int(re.search(r'_r(\d+)', path.name).group(1))


@functools.lru_cache(maxsize=None)
def load(path):
    return Config.fromfile(str(path))


def plain(cfg):
    """The config as a dict, without ``custom_imports`` and the ``_scope_``
    keys that ``mmdet::`` inheritance adds."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != '_scope_'}
        if isinstance(value, (list, tuple)):
            return type(value)(strip(v) for v in value)
        return value

    result = strip(cfg.to_dict())
    result.pop('custom_imports', None)
    return result


@pytest.fixture(autouse=True, scope='module')
def _setup():
    register_all_modules(init_default_scope=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # parameter init of big nets, busy 2-core CPU
    yield
    torch.set_num_threads(threads)


def test_configs_found():
    assert len(PRETRAINED) == 16
    assert all(p.exists() for p in BASELINES)
    assert {p.parent.name for p in PRETRAINED} == {
        'faster_rcnn', 'mask_rcnn', 'cascade_rcnn'}


@pytest.mark.parametrize('path', CONFIGS, ids=name)
def test_config_builds(path):
    init_default_scope('mmdet')
    cfg = load(path)
    assert 'isda_mm' in cfg.custom_imports.imports
    assert cfg.custom_imports.allow_failed_imports is False
    # a copy: building fills the cached config's dicts in place
    model = MODELS.build(copy.deepcopy(cfg.model))  # no init_weights
    assert type(model).__name__ == cfg.model.type
    assert type(model.backbone).__name__ == cfg.model.backbone.type


@pytest.mark.parametrize('path', PRETRAINED, ids=name)
def test_pretrained_config_is_baseline_plus_init(path):
    depth = depth_of(path)
    isda = plain(load(path))
    baseline = plain(load(baseline_of(path)))
    isda_init = isda['model']['backbone'].pop('init_cfg')
    baseline_init = baseline['model']['backbone'].pop('init_cfg')
    assert isda == baseline
    assert isda['model']['backbone']['depth'] == depth
    assert baseline_init == dict(type='Pretrained',
                                 checkpoint=f'torchvision://resnet{depth}')
    classification = f'resnet{depth}_8xb64-isda-coslr-300e_in1k'
    assert isda_init == dict(type='Pretrained', prefix='backbone.',
                             checkpoint=f'checkpoints/{classification}.pth')
    # the checkpoint is named after the config that trains it
    assert (ROOT / 'configs' / 'classification' / 'imagenet' /
            f'{classification}.py').exists()


@pytest.mark.parametrize(
    'path', [p for p in BASELINES if name(p) not in NOT_IN_ZOO], ids=name)
def test_baseline_is_the_zoo_config(path):
    zoo = ZOO_DIR / name(path)
    assert zoo.exists(), f'{name(path)} is not a zoo config name'
    assert plain(load(path)) == plain(load(zoo))


@pytest.mark.parametrize('relative', sorted(NOT_IN_ZOO))
def test_cascade_ms_3x_is_composed_from_the_zoo(relative):
    """Cascade R-CNN's model with Faster R-CNN's multi-scale 3x recipe."""
    ours = plain(load(CONFIG_DIR / relative))
    depth = depth_of(Path(relative))
    model = plain(load(ZOO_DIR / relative.replace('ms-3x', '1x')))['model']
    recipe = plain(load(ZOO_DIR / 'faster_rcnn' /
                        f'faster-rcnn_r{depth}_fpn_ms-3x_coco.py'))
    assert ours['model'] == model
    for key in ('train_dataloader', 'val_dataloader', 'train_cfg',
                'param_scheduler', 'optim_wrapper', 'val_evaluator'):
        assert ours[key] == recipe[key], key


def randomized_resnet50():
    generator = torch.Generator().manual_seed(0)
    net = torchvision.models.resnet50(weights=None)
    with torch.no_grad():
        for param in net.state_dict().values():
            if param.is_floating_point():
                param.normal_(0, 0.1, generator=generator)
    return net


def test_isda_init_cfg_loads_a_converted_checkpoint(tmp_path):
    net = randomized_resnet50()
    src = tmp_path / 'resnet50_isda.pth.tar'
    torch.save(dict(state_dict={'module.' + k: v
                                for k, v in net.state_dict().items()}), src)
    checkpoint = tmp_path / 'resnet50_8xb64-isda-coslr-300e_in1k.pth'
    converter.main([str(src), str(checkpoint)])

    init_default_scope('mmdet')
    cfg = Config.fromfile(
        CONFIG_DIR / 'faster_rcnn' / 'faster-rcnn_r50-isda_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    model = MODELS.build(cfg.model)
    expected = {k: v for k, v in net.state_dict().items()
                if not k.startswith('fc.')}
    backbone = model.backbone.state_dict()
    assert set(backbone) == set(expected)
    assert not torch.equal(backbone['conv1.weight'], expected['conv1.weight'])
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key

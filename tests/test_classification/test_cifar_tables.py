"""Every config of the ISDA paper's CIFAR Tables 2 and 4 added with them
trains a step on generated data.

For each config: its model with its data preprocessor (built once for the
configs that share it), its own training pipeline run on generated uint8
32x32 images (so the augmentations run), a batch of 2 collated as mmengine
does by default, its ``optim_wrapper``, one ``train_step``: the loss is
finite, ISDA runs in the ISDA configs only, and the parameters move.
The recipes themselves are checked in test_configs.py.
"""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS, TRANSFORMS
from mmpretrain.utils import register_all_modules

import isda_mm  # noqa: F401

CONFIG_DIR = Path(__file__).parents[2] / 'configs' / 'classification'
TABLE2_FOLDERS = ['se_resnet_cifar', 'resnext_cifar', 'densenet_cifar',
                  'shake_shake_cifar']
AUGMENTATIONS = ('-cutout-', '-randaug-', '-autoaug-')


def model_key(path):
    """Configs with the same key share a model: the network (the name up to
    its first ``_``), the data set and the head."""
    network = path.name.split('_')[0]
    return network, path.stem.rsplit('_', 1)[-1], '-isda-' in path.name


CONFIGS = sorted(
    [p for f in TABLE2_FOLDERS for p in (CONFIG_DIR / f).glob('*.py')
     if not p.stem.endswith('-jpg')]  # CPU smoke runs: images on disk
    + list((CONFIG_DIR / 'wrn_cifar').glob('wrn16-8_*.py'))
    + [p for p in (CONFIG_DIR / 'wrn_cifar').glob('wrn28-10_*.py')
       if any(word in p.name for word in AUGMENTATIONS)],
    key=lambda p: (model_key(p), p.name))


def name(path):
    return str(path.relative_to(CONFIG_DIR))


@pytest.fixture(autouse=True, scope='module')
def _setup():
    register_all_modules(init_default_scope=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # big nets at batch 2 on a busy 2-core CPU
    MessageHub.get_instance('test_cifar_tables')  # no runner: full lambda0
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
    torch.set_num_threads(threads)


class OneModel:
    """The last model built, reused while the configs ask for the same."""
    key, model = None, None

    @classmethod
    def of(cls, cfg):
        model_cfg = copy.deepcopy(cfg.model)
        # as mmengine's Runner does with the top-level data_preprocessor
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
        key = repr(model_cfg.to_dict())
        if key != cls.key:
            cls.key, cls.model = None, None  # free the last one first
            cls.model, cls.key = MODELS.build(model_cfg), key
        return cls.model


def test_tables_found():
    # Table 2: six networks x two data sets x (baseline, ISDA);
    # Table 4: three networks x three augmentations x the same four
    assert len(CONFIGS) == 6 * 4 + 3 * 3 * 4


@pytest.mark.parametrize('path', CONFIGS, ids=name)
def test_config_trains_a_step(path):
    cfg = Config.fromfile(str(path))
    torch.manual_seed(0)
    np.random.seed(0)
    model = OneModel.of(cfg)
    model.train()
    classes = cfg.model.head.num_classes
    pipeline = Compose(
        [TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline])
    rng = np.random.default_rng(0)
    batch = pseudo_collate([
        pipeline(dict(img=rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                      gt_label=int(label)))
        for label in rng.choice(classes, 2, replace=False)
    ])
    assert batch['inputs'][0].shape == (3, 32, 32)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {k: v.clone() for k, v in model.named_parameters()}

    log = model.train_step(batch, optim_wrapper)

    assert torch.isfinite(log['loss'])
    if '-isda-' in path.name:
        assert log['isda_lambda'] == cfg.model.head.lambda0 == 0.5
    else:
        assert 'isda_lambda' not in log
    after = dict(model.named_parameters())
    assert all(torch.isfinite(v).all() for v in after.values())
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert 'head.fc.weight' in moved
    assert any(k.startswith('backbone.') for k in moved)

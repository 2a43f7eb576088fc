"""Every config under configs/classification/ parses and builds its model.

Also checks that each ISDA config is its baseline plus ISDA settings on the
head, that the recipes are the paper's, and (when the CIFAR-10 JPEG copy is
unpacked in data/cifar10) that the -jpg configs read it.
"""
import functools
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.utils import register_all_modules

import isda_mm  # noqa: F401

ROOT = Path(__file__).parents[2]
CONFIG_DIR = ROOT / 'configs' / 'classification'
CONFIGS = sorted(CONFIG_DIR.rglob('*.py'))
ISDA_CONFIGS = [p for p in CONFIGS if '-isda-' in p.name]
ISDA_KEYS = {'lambda0', 'covariance', 'lambda_by', 'sync_ranks',
             'packed_covariance'}
CIFAR10_JPG = ROOT / 'data' / 'cifar10' / 'meta' / 'train.txt'


def name(path):
    return str(path.relative_to(CONFIG_DIR))


@functools.lru_cache(maxsize=None)
def load(path):
    return Config.fromfile(str(path))


def cfg_of(relative):
    return load(CONFIG_DIR / relative)


@pytest.fixture(autouse=True, scope='module')
def _setup():
    register_all_modules(init_default_scope=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # parameter init of big nets, busy 2-core CPU
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
    torch.set_num_threads(threads)


def test_configs_found():
    assert len(CONFIGS) >= 26
    assert len(ISDA_CONFIGS) * 2 <= len(CONFIGS)


@pytest.mark.parametrize('path', CONFIGS, ids=name)
def test_config_builds(path):
    cfg = load(path)
    assert 'isda_mm' in cfg.custom_imports.imports
    assert cfg.custom_imports.allow_failed_imports is False
    model_cfg = cfg.model.copy()
    # as mmengine's Runner does with the top-level data_preprocessor
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    assert type(model.head).__name__ == cfg.model.head.type
    assert type(model.backbone).__name__ == cfg.model.backbone.type


@pytest.mark.parametrize('path', ISDA_CONFIGS, ids=name)
def test_isda_config_is_baseline_plus_head(path):
    """Only the head's type and ISDA settings differ from the baseline."""
    baseline_path = path.with_name(path.name.replace('-isda-', '-'))
    assert baseline_path.exists(), f'no baseline for {name(path)}'
    isda = load(path).to_dict()
    baseline = load(baseline_path).to_dict()
    isda_head = isda['model'].pop('head')
    stock_head = baseline['model'].pop('head')
    assert isda == baseline
    assert isda_head.pop('type') == 'ISDA' + stock_head.pop('type')
    assert set(isda_head) - set(stock_head) <= ISDA_KEYS
    assert {k: v for k, v in isda_head.items() if k not in ISDA_KEYS} == (
        stock_head)


CIFAR_RESNET = {
    f'resnet_cifar/resnet{depth}_1xb128-160e_{data}.py': (depth, classes)
    for depth in (32, 110)
    for data, classes in [('cifar10', 10), ('cifar100', 100),
                          ('cifar10-jpg', 10)]
    if not (depth == 110 and data == 'cifar10-jpg')
}


@pytest.mark.parametrize('relative', CIFAR_RESNET)
def test_cifar_resnet_recipe(relative):
    """He et al. / ISDA CIFAR scripts: 160 epochs, x0.1 at 80 and 120."""
    cfg = cfg_of(relative)
    depth, classes = CIFAR_RESNET[relative]
    assert cfg.model.backbone == dict(type='CIFARResNet', depth=depth)
    assert cfg.model.head.num_classes == classes
    assert cfg.data_preprocessor.num_classes == classes
    assert cfg.model.head.in_channels == 64
    check_cifar_schedule(cfg, epochs=160, milestones=[80, 120], gamma=0.1,
                         weight_decay=1e-4)


@pytest.mark.parametrize('data, classes', [('cifar10', 10),
                                           ('cifar100', 100)])
def test_wrn_recipe(data, classes):
    """ISDA CIFAR scripts: 240 epochs, x0.2 at 60/120/160/200, wd 5e-4."""
    cfg = cfg_of(f'wrn_cifar/wrn28-10_1xb128-240e_{data}.py')
    assert cfg.model.backbone == dict(
        type='WideResNet', depth=28, widen_factor=10, drop_rate=0.3)
    assert cfg.model.head.num_classes == classes
    assert cfg.model.head.in_channels == 640
    check_cifar_schedule(cfg, epochs=240, milestones=[60, 120, 160, 200],
                         gamma=0.2, weight_decay=5e-4)


def check_cifar_schedule(cfg, epochs, milestones, gamma, weight_decay):
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.test_dataloader == cfg.val_dataloader
    types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert 'RandomCrop' in types and 'RandomFlip' in types
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum) == ('SGD', 0.1,
                                                                  0.9)
    assert optimizer.nesterov is True
    assert optimizer.weight_decay == weight_decay
    scheduler = cfg.param_scheduler
    assert scheduler.type == 'MultiStepLR' and scheduler.by_epoch
    assert (scheduler.milestones, scheduler.gamma) == (milestones, gamma)
    assert cfg.train_cfg.max_epochs == epochs


def unscoped(part):
    return {k: v for k, v in part.items() if k != '_scope_'}


def step_lr(milestones, gamma=0.1):
    return dict(type='MultiStepLR', by_epoch=True, milestones=milestones,
                gamma=gamma)


# The rest of the ISDA paper's Table 2, each network with its recipe in the
# paper's code (train.py, training_configurations): backbone, features,
# batch, lr, lr schedule, epochs, weight decay.
TABLE2 = {
    'se_resnet_cifar/se-resnet110_1xb128-200e':
    (dict(type='CIFARSEResNet', depth=110), 64, 128, 0.1,
     step_lr([80, 120, 160]), 200, 1e-4),
    'wrn_cifar/wrn16-8_1xb128-240e':
    (dict(type='WideResNet', depth=16, widen_factor=8, drop_rate=0.3), 512,
     128, 0.1, step_lr([60, 120, 160, 200], 0.2), 240, 5e-4),
    'resnext_cifar/resnext29-8x64d_1xb128-350e':
    (dict(type='CIFARResNeXt', depth=29, groups=8, width_per_group=64),
     1024, 128, 0.05, step_lr([150, 225, 300]), 350, 5e-4),
    'densenet_cifar/densenet-bc100-k12_1xb64-300e':
    (dict(type='CIFARDenseNet', depth=100, growth_rate=12), 342, 64, 0.1,
     step_lr([150, 200, 250]), 300, 1e-4),
    'shake_shake_cifar/shake-shake26-2x32d_1xb64-coslr-1800e':
    (dict(type='ShakeShakeResNet', depth=26, base_channels=32), 128, 64,
     0.1, dict(type='CosineAnnealingLR', T_max=1800, eta_min=0.,
               by_epoch=True, begin=0, end=1800), 1800, 1e-4),
    'shake_shake_cifar/shake-shake26-2x112d_1xb64-coslr-1800e':
    (dict(type='ShakeShakeResNet', depth=26, base_channels=112), 448, 64,
     0.1, dict(type='CosineAnnealingLR', T_max=1800, eta_min=0.,
               by_epoch=True, begin=0, end=1800), 1800, 1e-4),
}


@pytest.mark.parametrize('data, classes', [('cifar10', 10),
                                           ('cifar100', 100)])
@pytest.mark.parametrize('stem', TABLE2)
def test_table2_recipe(stem, data, classes):
    backbone, features, batch, lr, scheduler, epochs, decay = TABLE2[stem]
    cfg = cfg_of(f'{stem}_{data}.py')
    assert cfg.model.backbone == backbone
    assert cfg.model.head.in_channels == features
    assert cfg.model.head.num_classes == classes
    assert cfg.data_preprocessor.num_classes == classes
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.val_dataloader.batch_size == batch  # as the paper's code
    assert cfg.test_dataloader == cfg.val_dataloader
    assert cfg.auto_scale_lr.base_batch_size == batch
    # parts inherited from the zoo carry its _scope_
    assert unscoped(cfg.optim_wrapper.optimizer) == dict(
        type='SGD', lr=lr, momentum=0.9, weight_decay=decay, nesterov=True)
    assert unscoped(cfg.param_scheduler) == scheduler
    assert cfg.train_cfg.max_epochs == epochs


# Table 4: WRN-28-10 and both Shake-Shakes with Cutout, RandAugment and
# AutoAugment. Each config is its Table 2 config with another training
# pipeline; RandAugment's (N, M) are the RandAugment paper's.
TABLE4 = ['wrn_cifar/wrn28-10_1xb128-240e',
          'shake_shake_cifar/shake-shake26-2x32d_1xb64-coslr-1800e',
          'shake_shake_cifar/shake-shake26-2x112d_1xb64-coslr-1800e']
AUGMENTATIONS = ['cutout', 'randaug', 'autoaug']
RANDAUGMENT = {('wrn28-10', 'cifar10'): (3, 5),
               ('wrn28-10', 'cifar100'): (2, 14)}  # Shake-Shake: (3, 9)
AUGMENT_PARTS = Config.fromfile(
    str(CONFIG_DIR.parent / '_base_' / 'datasets' / 'pipelines' /
        'cifar_augment.py')).to_dict()


@pytest.mark.parametrize('data', ['cifar10', 'cifar100'])
@pytest.mark.parametrize('augmentation', AUGMENTATIONS)
@pytest.mark.parametrize('stem', TABLE4)
def test_table4_is_table2_with_another_pipeline(stem, augmentation, data):
    folder, name = stem.split('/')
    model, rest = name.split('_', 1)
    batch, schedule = rest.split('-', 1)
    cfg = cfg_of(f'{folder}/{model}_{batch}-{augmentation}-{schedule}_'
                 f'{data}.py').to_dict()
    table2 = cfg_of(f'{stem}_{data}.py').to_dict()
    if augmentation == 'randaug':
        n, m = RANDAUGMENT.get((model, data), (3, 9))
        part = f'randaugment_n{n}_m{m}_train_pipeline'
    else:
        part = dict(cutout='cutout_train_pipeline',
                    autoaug='autoaugment_train_pipeline')[augmentation]
    pipeline = cfg['train_dataloader']['dataset'].pop('pipeline')
    assert pipeline == cfg.pop('train_pipeline') == AUGMENT_PARTS[part]
    table2['train_dataloader']['dataset'].pop('pipeline')
    table2.pop('train_pipeline')
    for key in AUGMENT_PARTS:  # the part's variables, carried along
        cfg.pop(key)
    assert cfg == table2


IMAGENET = {
    'resnet50': ('ResNet', 7.5),
    'resnet101': ('ResNet', 5.0),
    'resnet152': ('ResNet', 7.5),
    'resnext50-32x4d': ('ResNeXt', 7.5),
    'resnext101-32x8d': ('ResNeXt', 7.5),
    'densenet121': ('DenseNet', 1.0),
    'densenet265': ('DenseNet', 1.0),
}


@pytest.mark.parametrize('model', IMAGENET)
def test_imagenet_recipe(model):
    """ISDA ImageNet: 300 epochs cosine, batch 8x64, lr 0.2, diagonal."""
    cfg = cfg_of(f'imagenet/{model}_8xb64-coslr-300e_in1k.py')
    backbone, lambda0 = IMAGENET[model]
    assert cfg.model.backbone.type == backbone
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.auto_scale_lr.base_batch_size == 512
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.lr, optimizer.weight_decay) == (0.2, 1e-4)
    scheduler = cfg.param_scheduler
    assert scheduler.type == 'CosineAnnealingLR'
    assert (scheduler.T_max, scheduler.end) == (300, 300)
    assert cfg.train_cfg.max_epochs == 300
    head = cfg_of(f'imagenet/{model}_8xb64-isda-coslr-300e_in1k.py').model.head
    assert head.type == 'ISDALinearClsHead'
    assert (head.lambda0, head.covariance, head.lambda_by) == (lambda0,
                                                               'diagonal',
                                                               'epoch')


@pytest.mark.parametrize('path', [p for p in ISDA_CONFIGS
                                  if 'cifar' in p.name], ids=name)
def test_cifar_isda_settings(path):
    cfg = load(path)
    head = cfg.model.head
    # epoch-based recipes grow lambda by epoch (the paper's scripts); the
    # iteration-based smoke recipe (deit_cifar) by iteration
    by = 'epoch' if cfg.train_cfg.get('by_epoch', True) else 'iter'
    assert (head.lambda0, head.covariance, head.lambda_by) == (0.5, 'full',
                                                               by)


def test_custom_imports_alone_suffice():
    """mmpretrain's own tools import nothing of ours: the config must."""
    config = CONFIG_DIR / 'wrn_cifar' / 'wrn28-10_1xb128-isda-240e_cifar100.py'
    script = (
        'import sys\n'
        'from mmengine.config import Config\n'
        'from mmpretrain.registry import MODELS\n'
        'from mmpretrain.utils import register_all_modules\n'
        'register_all_modules()\n'
        'assert "isda_mm" not in sys.modules\n'
        f'cfg = Config.fromfile({str(config)!r})\n'
        'cfg.model.backbone.widen_factor = 1\n'
        'cfg.model.head.in_channels = 64\n'
        'model = MODELS.build(cfg.model)\n'
        'print(type(model.backbone).__name__, type(model.head).__name__)\n')
    result = subprocess.run([sys.executable, '-c', script], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ['WideResNet', 'ISDALinearClsHead']


@pytest.mark.skipif(not CIFAR10_JPG.exists(),
                    reason='CIFAR-10 JPEG copy not in data/cifar10 (see '
                    '"Data" in README.md)')
@pytest.mark.parametrize('split, size', [('train', 50000), ('val', 10000)])
def test_cifar10_jpg_dataset(split, size, monkeypatch):
    monkeypatch.chdir(ROOT)  # data_root is relative to the repository
    cfg = cfg_of('resnet_cifar/resnet32_1xb128-isda-160e_cifar10-jpg.py')
    dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
    assert len(dataset) == size
    assert dataset.metainfo['classes'] == (
        'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
        'horse', 'ship', 'truck')
    first, last = dataset[0], dataset[size - 1]
    assert first['inputs'].shape == (3, 32, 32)
    assert first['inputs'].dtype == torch.uint8
    assert first['data_samples'].gt_label.tolist() == [0]
    assert last['data_samples'].gt_label.tolist() == [9]
    # through the model's data preprocessor (BGR -> RGB, normalised)
    model_cfg = cfg.model.copy()
    model_cfg.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(model_cfg)
    data = model.data_preprocessor(
        dict(inputs=[first['inputs']], data_samples=[first['data_samples']]))
    assert data['inputs'].shape == (1, 3, 32, 32)
    assert data['inputs'].abs().mean() < 3


def test_shake_shake_smoke_is_table2_on_the_jpeg_copy():
    """The CPU smoke pair: Table 2's Shake-Shake 2x32d network, batch and
    optimizer on the CIFAR-10 JPEG data, its cosine squeezed into 300
    iterations."""
    smoke = cfg_of(
        'shake_shake_cifar/shake-shake26-2x32d_1xb64-300it_cifar10-jpg.py')
    table2 = cfg_of(
        'shake_shake_cifar/shake-shake26-2x32d_1xb64-coslr-1800e_cifar10.py')
    jpg = cfg_of('resnet_cifar/resnet32_1xb128-160e_cifar10-jpg.py')
    assert smoke.model == table2.model
    assert smoke.optim_wrapper == table2.optim_wrapper
    assert smoke.train_dataloader.batch_size == 64
    assert smoke.train_dataloader.dataset == jpg.train_dataloader.dataset
    assert smoke.val_dataloader.dataset == jpg.val_dataloader.dataset
    assert smoke.data_preprocessor == jpg.data_preprocessor
    assert smoke.param_scheduler == dict(table2.param_scheduler, T_max=300,
                                         by_epoch=False, end=300)
    assert smoke.train_cfg == dict(by_epoch=False, max_iters=300,
                                   val_interval=300)

"""The soft-target recipes (DeiT, RSB) and their ISDA twins, read as configs.

Their ISDA twins keep the zoo's Mixup/CutMix and loss; the RSB softmax
baseline is the stock RSB-A3 but for the loss. Configs are only parsed here:
test_configs.py builds every model.
"""
import functools
import importlib.util
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).parents[2]
CONFIG_DIR = ROOT / 'configs' / 'classification'
ZOO_DIR = Path(importlib.util.find_spec('mmpretrain')
               .submodule_search_locations[0]) / '.mim' / 'configs'

DEIT = 'deit/deit-small_4xb256-300e_in1k.py'
DEIT_ISDA = 'deit/deit-small_4xb256-isda-300e_in1k.py'
RSB = 'resnet_rsb/resnet50_8xb256-rsb-a3-100e_in1k.py'
RSB_SOFTMAX = 'resnet_rsb/resnet50_8xb256-rsb-a3-softmax-100e_in1k.py'
RSB_ISDA = 'resnet_rsb/resnet50_8xb256-isda-rsb-a3-softmax-100e_in1k.py'
CIFAR = 'deit_cifar/deit-tiny-p4_1xb32-300it_cifar10-jpg.py'
CIFAR_ISDA = 'deit_cifar/deit-tiny-p4_1xb32-isda-300it_cifar10-jpg.py'

DEIT_AUGMENTS = [dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]
LABEL_SMOOTH = dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                    mode='original')

# ISDA twin: (its baseline, augments, loss, ISDA head settings)
TWINS = {
    DEIT_ISDA: (DEIT, DEIT_AUGMENTS, LABEL_SMOOTH,
                ('ISDAVisionTransformerClsHead', 7.5, 'diagonal', 'epoch')),
    RSB_ISDA: (RSB_SOFTMAX,
               [dict(type='Mixup', alpha=0.1), dict(type='CutMix', alpha=1.0)],
               dict(type='CrossEntropyLoss', use_soft=True, loss_weight=1.0),
               ('ISDALinearClsHead', 7.5, 'diagonal', 'epoch')),
    CIFAR_ISDA: (CIFAR, DEIT_AUGMENTS, LABEL_SMOOTH,
                 ('ISDAVisionTransformerClsHead', 0.5, 'full', 'iter')),
}


@functools.lru_cache(maxsize=None)
def load(relative, zoo=False):
    cfg = Config.fromfile(str((ZOO_DIR if zoo else CONFIG_DIR) / relative),
                         import_custom_modules=False)
    return plain(cfg.to_dict())


def plain(value):
    """Without the ``_scope_`` keys that ``mmpretrain::`` inheritance adds."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


@pytest.mark.parametrize('ours, zoo', [
    (DEIT, 'deit/deit-small_4xb256_in1k.py'),
    (RSB, 'resnet/resnet50_8xb256-rsb-a3-100e_in1k.py'),
])
def test_baseline_is_the_zoo_config(ours, zoo):
    cfg = dict(load(ours))
    assert cfg.pop('custom_imports') == dict(imports=['isda_mm'],
                                             allow_failed_imports=False)
    assert cfg == load(zoo, zoo=True)


@pytest.mark.parametrize('isda_path', TWINS)
def test_isda_twin_keeps_soft_targets_and_loss(isda_path):
    baseline_path, augments, loss, settings = TWINS[isda_path]
    isda, baseline = load(isda_path), load(baseline_path)
    assert baseline['model']['train_cfg']['augments'] == augments
    assert isda['model']['train_cfg'] == baseline['model']['train_cfg']
    assert baseline['model']['head']['loss'] == loss
    assert isda['model']['head']['loss'] == loss
    assert isda.get('data_preprocessor') == baseline.get('data_preprocessor')
    head = isda['model']['head']
    assert (head['type'], head['lambda0'], head['covariance'],
            head['lambda_by']) == settings


def test_rsb_softmax_baseline_differs_from_rsb_a3_only_in_loss():
    stock, softmax = load(RSB), load(RSB_SOFTMAX)
    stock_loss = stock['model']['head'].pop('loss')
    softmax_loss = softmax['model']['head'].pop('loss')
    try:
        assert softmax == stock
    finally:  # the cached dicts are shared with the other tests
        stock['model']['head']['loss'] = stock_loss
        softmax['model']['head']['loss'] = softmax_loss
    assert stock_loss['type'] == 'CrossEntropyLoss'
    assert stock_loss['use_sigmoid'] is True
    assert softmax_loss == dict(type='CrossEntropyLoss', use_soft=True,
                                loss_weight=stock_loss['loss_weight'])


def test_deit_cifar_smoke_schedule():
    """300 iterations, one evaluation on the test split at the end."""
    cfg = load(CIFAR)
    model = cfg['model']
    assert model['backbone'] == dict(type='VisionTransformer',
                                     arch='deit-tiny', img_size=32,
                                     patch_size=4)
    assert model['head']['num_classes'] == 10
    assert model['head']['in_channels'] == 192
    assert cfg['data_preprocessor']['num_classes'] == 10
    assert cfg['data_preprocessor']['to_rgb'] is True  # JPEGs decode to BGR
    train_cfg = cfg['train_cfg']
    assert train_cfg == dict(by_epoch=False, max_iters=300, val_interval=300)
    assert cfg['param_scheduler'][-1]['end'] == train_cfg['max_iters']
    assert all(s['by_epoch'] is False for s in cfg['param_scheduler'])
    assert cfg['optim_wrapper']['optimizer']['type'] == 'AdamW'
    train = cfg['train_dataloader']
    assert (train['dataset']['ann_file'],
            train['dataset']['data_prefix']) == ('meta/train.txt', 'train')
    val = cfg['val_dataloader']['dataset']
    assert (val['type'], val['data_root'], val['ann_file'],
            val['data_prefix']) == ('CustomDataset', 'data/cifar10',
                                    'meta/test.txt', 'test')
    assert cfg['test_dataloader'] == cfg['val_dataloader']
    assert cfg['default_hooks']['checkpoint']['by_epoch'] is False
    assert cfg['log_processor']['by_epoch'] is False

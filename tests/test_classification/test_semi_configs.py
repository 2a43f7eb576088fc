"""The configs of the ISDA paper's Table 6 (Wang et al., T-PAMI 2021): one
baseline and one ``-isda-`` twin per cell, no more, no fewer; each twin is
its baseline with an ISDA head; each cell holds its reference's recipe;
and every config under configs/classification/semi builds in mmengine's
Runner and trains one step on a tiny generated image folder."""
import copy
import functools
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import isda_mm  # noqa: F401

ROOT = Path(__file__).parents[2]
SEMI = ROOT / 'configs' / 'classification' / 'semi'

# Table 6: (method, column) -> the baseline's file name, with '{}' where
# its ISDA twin has 'isda-'. Columns: CIFAR-10 with 1k/2k/4k labels,
# CIFAR-100 with 10k/20k, SVHN with 500 (Mean Teacher and VAT only).
TABLE6 = {
    ('pi-model', 'cifar10-1k'):
    'pi-model_convnet13_1xb100-{}150k_cifar10-1k-labels.py',
    ('pi-model', 'cifar10-2k'):
    'pi-model_convnet13_1xb100-{}150k_cifar10-2k-labels.py',
    ('pi-model', 'cifar10-4k'):
    'pi-model_convnet13_1xb100-{}150k_cifar10-4k-labels.py',
    ('pi-model', 'cifar100-10k'):
    'pi-model_convnet13_1xb100-{}150k_cifar100-10k-labels.py',
    ('pi-model', 'cifar100-20k'):
    'pi-model_convnet13_1xb100-{}150k_cifar100-20k-labels.py',
    ('temporal-ensembling', 'cifar10-1k'):
    'temporal-ensembling_convnet13_1xb100-{}150k_cifar10-1k-labels.py',
    ('temporal-ensembling', 'cifar10-2k'):
    'temporal-ensembling_convnet13_1xb100-{}150k_cifar10-2k-labels.py',
    ('temporal-ensembling', 'cifar10-4k'):
    'temporal-ensembling_convnet13_1xb100-{}150k_cifar10-4k-labels.py',
    ('temporal-ensembling', 'cifar100-10k'):
    'temporal-ensembling_convnet13_1xb100-{}150k_cifar100-10k-labels.py',
    ('temporal-ensembling', 'cifar100-20k'):
    'temporal-ensembling_convnet13_1xb100-{}150k_cifar100-20k-labels.py',
    ('mean-teacher', 'cifar10-1k'):
    'mean-teacher_convnet13_1xb100-{}150k_cifar10-1k-labels.py',
    ('mean-teacher', 'cifar10-2k'):
    'mean-teacher_convnet13_1xb100-{}150k_cifar10-2k-labels.py',
    ('mean-teacher', 'cifar10-4k'):
    'mean-teacher_convnet13_1xb100-{}150k_cifar10-4k-labels.py',
    ('mean-teacher', 'cifar100-10k'):
    'mean-teacher_convnet13_1xb100-{}150k_cifar100-10k-labels.py',
    ('mean-teacher', 'cifar100-20k'):
    'mean-teacher_convnet13_1xb100-{}150k_cifar100-20k-labels.py',
    ('mean-teacher', 'svhn-500'):
    'mean-teacher_convnet13_1xb100-{}180k_svhn-500-labels.py',
    ('vat', 'cifar10-1k'): 'vat_convnet13_1xb160-{}200k_cifar10-1k-labels.py',
    ('vat', 'cifar10-2k'): 'vat_convnet13_1xb160-{}200k_cifar10-2k-labels.py',
    ('vat', 'cifar10-4k'): 'vat_convnet13_1xb160-{}200k_cifar10-4k-labels.py',
    ('vat', 'cifar100-10k'):
    'vat_convnet13_1xb160-{}200k_cifar100-10k-labels.py',
    ('vat', 'cifar100-20k'):
    'vat_convnet13_1xb160-{}200k_cifar100-20k-labels.py',
    ('vat', 'svhn-500'): 'vat_convnet13_1xb160-{}48k_svhn-500-labels.py',
}
# Beyond the table: Mean Teacher's own SVHN setting (1,000 labels), and the
# CPU smoke pair of each method on the CIFAR-10 JPEG copy.
BEYOND = {
    ('mean-teacher', 'svhn-1k'):
    'mean-teacher_convnet13_1xb100-{}180k_svhn-1k-labels.py',
}
SMOKE = {
    (method, 'cifar10-jpg-4k'):
    f'{method}_convnet13_1xb32-{{}}200it_cifar10-jpg-4k-labels.py'
    for method in ('pi-model', 'temporal-ensembling', 'mean-teacher', 'vat')
}
ALL = {**TABLE6, **BEYOND, **SMOKE}
PAIRS = [(key, pattern.format(''), pattern.format('isda-'))
         for key, pattern in ALL.items()]
NAMES = [name for _, baseline, twin in PAIRS for name in (baseline, twin)]

MODEL_TYPES = {
    'pi-model': 'ISDAPiModel',
    'temporal-ensembling': 'ISDATemporalEnsembling',
    'mean-teacher': 'ISDAMeanTeacher',
    'vat': 'ISDAVAT',
}
TWO_VIEWS = {'pi-model', 'mean-teacher'}
ISDA_HEAD = dict(type='ISDALinearClsHead', lambda0=0.5, covariance='full',
                 lambda_by='iter')
COLUMNS = {  # column: (classes, labels, training images)
    'cifar10-1k': (10, 1000, 50000),
    'cifar10-2k': (10, 2000, 50000),
    'cifar10-4k': (10, 4000, 50000),
    'cifar100-10k': (100, 10000, 50000),
    'cifar100-20k': (100, 20000, 50000),
    'svhn-500': (10, 500, 73257),
    'svhn-1k': (10, 1000, 73257),
}


@functools.lru_cache(maxsize=None)
def _load(name):
    return Config.fromfile(str(SEMI / name))


def load(name):
    """The merged config, parsed once per module (a copy each call)."""
    return copy.deepcopy(_load(name))


def kl_weight(w_mse, classes):
    """The squared-error weight as a KL weight: Mean Teacher's scaling
    (TensorFlow code, model.py consistency_costs)."""
    return w_mse * 2 * (1 - 1 / classes) / classes**2


def reference_recipe(method, column):
    """What each cell must hold, from its reference's code (the folder
    README's table): consistency weight, labeled images per batch, batch
    size, iterations."""
    classes, labels, images = COLUMNS[column]
    if method == 'vat':  # vat_tf: weight 1 on the mean over 128 of 160
        return dict(weight=160 / 128, labeled=32, batch=160,
                    iters=48000 if column.startswith('svhn') else 200000)
    if column.startswith('svhn'):  # svhn_final_eval.py
        return dict(weight=kl_weight(1.0, classes), labeled=1, batch=100,
                    iters=180000)
    # tempens config.py: unsup_weight_max 100, 30 for temporal ensembling
    # on CIFAR-10; cifar10_final_eval.py: 100; both scaled by labels/images
    w_max = 30.0 if (method, classes) == ('temporal-ensembling', 10) else 100.
    return dict(weight=kl_weight(w_max * labels / images, classes),
                labeled=100 * labels // images, batch=100, iters=150000)


def test_the_configs_are_the_tables_cells():
    """configs/classification/semi holds Table 6's cells, the pair beyond
    it and the smoke pairs, each as baseline and ISDA twin: no other."""
    assert len(TABLE6) == 2 * 5 + 2 * 6
    assert sorted(p.name for p in SEMI.glob('*.py')) == sorted(NAMES)


@pytest.mark.parametrize('key,baseline,twin', PAIRS,
                         ids=[b for _, b, _ in PAIRS])
def test_isda_twin_differs_only_in_the_head(key, baseline, twin):
    base, isda = load(baseline).to_dict(), load(twin).to_dict()
    base_head, isda_head = base['model'].pop('head'), isda['model'].pop(
        'head')
    assert base == isda
    assert base_head['type'] == 'LinearClsHead'
    assert isda_head == dict(base_head, **ISDA_HEAD)


@pytest.mark.parametrize('key,baseline', [(k, p.format(''))
                                          for k, p in TABLE6.items()],
                         ids=[p.format('') for p in TABLE6.values()])
def test_cell_holds_its_reference_recipe(key, baseline):
    method, column = key
    classes, labels, images = COLUMNS[column]
    want = reference_recipe(method, column)
    cfg = load(baseline)
    model, loader = cfg.model, cfg.train_dataloader
    assert model.type == MODEL_TYPES[method]
    assert model.consistency_weight == pytest.approx(want['weight'])
    assert model.head.num_classes == classes
    assert cfg.data_preprocessor.num_classes == classes
    assert loader.dataset.num_labels == labels
    assert loader.batch_size == want['batch']
    assert loader.batch_sampler.num_labeled == want['labeled']
    assert cfg.train_cfg.max_iters == want['iters']
    views = [t.type for t in loader.dataset.dataset.pipeline]
    assert ('MultiView' in views) == (method in TWO_VIEWS)
    assert model.get('consistency', 'kl') == 'kl'
    if method == 'vat':
        assert model.epsilon == (17.6 if column.startswith('svhn') else 8.0)
        assert (model.xi, model.power_iterations) == (1e-6, 1)
        assert not model.consistency_on_labeled
        assert model.supervised_normalizer == 'labeled'
        assert model.rampup_iters == 0 and model.input_noise == 0
    else:
        assert model.input_noise == 0.15 and model.rampup_iters == 40000
        assert model.consistency_on_labeled == (not column.startswith('svhn'))
    if method == 'temporal-ensembling':
        assert model.ensemble_momentum == 0.6
        assert model.num_images == images
    svhn = column.startswith('svhn')
    if method == 'mean-teacher':  # 0.99 in the ramp-up: SVHN's default
        assert model.ema_decay == ((0.99 if svhn else 0.999), 0.999)
    lr = cfg.optim_wrapper.optimizer.lr
    if method == 'vat':  # lr decay and beta1 0.5 over the last 40 epochs
        decay, momentum = cfg.param_scheduler
        assert lr == 0.001
        assert (decay.begin, decay.end) == (want['iters'] - 16000,
                                            want['iters'])
        assert momentum.milestones == [decay.begin]
    else:
        ramps = cfg.param_scheduler
        assert lr == 0.003 and ramps.total_iters == want['iters']
        assert (ramps.rampup_iters, ramps.rampdown_iters) == (40000, 25000)
        assert ramps.betas1 == (0.9, 0.5)
        assert ramps.betas2 == ((0.99 if svhn else 0.999), 0.999)


# ----------------------------------------------------------- one step each
@pytest.fixture(scope='module')
def image_folders(tmp_path_factory):
    """{classes: folder}: one 32x32 image per class under train/<class>/,
    for 10 and 100 classes, made once for the module."""
    root = tmp_path_factory.mktemp('semi_images')
    rng = np.random.default_rng(0)
    folders = {}
    for classes in (10, 100):
        folders[classes] = root / f'c{classes}'
        for c in range(classes):
            folder = folders[classes] / 'train' / f'{c:03d}'
            folder.mkdir(parents=True)
            cv2.imwrite(str(folder / '0.png'),
                        rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return folders


@pytest.fixture(scope='module')
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core CPU
    yield
    torch.set_num_threads(threads)


def tiny(cfg, folders, work_dir):
    """The config on a generated image folder: one labeled image per class,
    batches of 4 with 2 labeled, one iteration, no evaluation, no
    checkpoint or log file; model, pipeline, optimizer, schedule and custom
    hooks as the config has them."""
    classes = cfg.model.head.num_classes
    pipeline = [t for t in cfg.train_dataloader.dataset.dataset.pipeline
                if t.type != 'LoadImageFromFile']
    cfg.train_dataloader.update(
        batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset = dict(
        type='SemiSupervisedDataset', num_labels=classes, seed=0,
        dataset=dict(type='CustomDataset', data_root=str(folders[classes]),
                     data_prefix='train',
                     pipeline=[dict(type='LoadImageFromFile')] + pipeline))
    cfg.train_dataloader.batch_sampler.num_labeled = 2
    if 'num_images' in cfg.model:
        cfg.model.num_images = classes
    cfg.train_cfg = dict(by_epoch=False, max_iters=1)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    # mmengine's defaults but these three (the zoo's visualization hook
    # goes with the config's default_hooks)
    cfg.default_hooks = dict(logger=None, checkpoint=None, timer=None)
    cfg.visualizer = None
    cfg.update(work_dir=str(work_dir), log_level='ERROR', launcher='none',
               randomness=dict(seed=0),
               experiment_name=f'semi_cfg_{uuid.uuid4().hex}')
    return cfg


@pytest.mark.parametrize('name', NAMES)
def test_config_trains_a_step(name, image_folders, one_thread, tmp_path):
    method = next(m for (m, _), p in ALL.items()
                  if name in (p.format(''), p.format('isda-')))
    cfg = tiny(load(name), image_folders, tmp_path)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner = Runner.from_cfg(cfg)
        runner.train()
    model = runner.model
    assert type(model).__name__ == MODEL_TYPES[method]
    assert type(model.head).__name__ == cfg.model.head.type
    assert runner.iter == 1
    hub = runner.message_hub
    assert np.isfinite(hub.get_scalar('train/loss').current())
    assert hub.get_scalar('train/num_labeled').current() == 2
    assert (tmp_path / 'labeled_split.json').is_file()

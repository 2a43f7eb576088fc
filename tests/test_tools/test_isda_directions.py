"""tools/analysis_tools/isda_directions.py on tiny LeNet-5 models trained
here for one epoch through tools/train.py (one ISDA head with a full
covariance, one with a diagonal one), checked against float64 numpy."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).parents[2]
CLASSES, PER_CLASS, BATCH, DIM = 3, 10, 8, 120
NAMES = [f'class{c}' for c in range(CLASSES)]

CONFIG = """
default_scope = 'mmpretrain'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(mean=[127.5], std=[127.5], to_rgb=False),
    backbone=dict(type='LeNet5', num_classes=-1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='{head}', num_classes={classes}, in_channels={dim},
              loss=dict(type='CrossEntropyLoss'){isda}))
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='PackInputs')]
train_dataloader = dict(
    batch_size={batch}, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='{data}',
                 data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
test_dataloader = dict(
    batch_size={batch}, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='{data}',
                 data_prefix='train', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='Accuracy')
test_cfg = dict()
train_cfg = dict(by_epoch=True, max_epochs=1)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1))
randomness = dict(seed=0)
experiment_name = '{name}'  # runs in one process share no MessageHub
"""


def write_config(tmp, name, head, isda=''):
    path = tmp / f'{name}.py'
    path.write_text(CONFIG.format(name=name, head=head, isda=isda,
                                  classes=CLASSES, dim=DIM, batch=BATCH,
                                  data=tmp / 'data'))
    return path


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Configs and checkpoints: ISDA full and ISDA diagonal (trained while
    this process imports mmpretrain), stock (the full one without its ISDA
    buffers, as a deployed model)."""
    tmp = tmp_path_factory.mktemp('directions')
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        folder = tmp / 'data' / 'train' / NAMES[c]
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            image = rng.normal(60 + 60 * c, 40, (32, 32))
            image[:, :8 + 2 * i] += 40  # a left band of varying width
            cv2.imwrite(str(folder / f'{i}.png'),
                        image.clip(0, 255).astype(np.uint8))
    configs = {
        kind: write_config(tmp, kind, 'ISDALinearClsHead',
                           f", lambda0=0.5, covariance='{kind}'")
        for kind in ('full', 'diagonal')
    }
    configs['stock'] = write_config(tmp, 'stock', 'LinearClsHead')
    # Both trainings in one process (one import of mmpretrain), each
    # through tools/train.py as its __main__.
    script = ('import runpy, sys\n'
              'for config, work_dir in zip(sys.argv[1::2], sys.argv[2::2]):\n'
              '    sys.argv = ["tools/train.py", config, "--work-dir", '
              'work_dir]\n'
              '    runpy.run_path("tools/train.py", run_name="__main__")\n')
    args = [str(a) for kind in ('full', 'diagonal')
            for a in (configs[kind], tmp / kind)]
    job = subprocess.Popen(
        [sys.executable, '-c', script] + args, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tool = load_tool()  # imports mmpretrain here while they train
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err.decode()[-3000:]
    ckpts = {kind: tmp / kind / 'epoch_1.pth' for kind in ('full', 'diagonal')}
    state = torch.load(ckpts['full'])['state_dict']
    ckpts['stock'] = tmp / 'stock.pth'
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if '.isda.' not in k}}, ckpts['stock'])
    return dict(tmp=tmp, configs=configs, ckpts=ckpts, tool=tool)


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'isda_directions',
        ROOT / 'tools' / 'analysis_tools' / 'isda_directions.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(trained, config, ckpt, out, *args):
    """The tool's ``main`` in this process, on the test split unless
    ``args`` says otherwise."""
    return trained['tool'].main(
        [str(trained['configs'][config]), str(trained['ckpts'][ckpt]),
         '--out', str(trained['tmp'] / out), '--split', 'test',
         '--save-arrays'] + list(args))


def assert_same_directions(ours, reference):
    """Unit vectors equal up to sign."""
    dots = np.abs(np.sum(ours * reference, axis=1))
    np.testing.assert_allclose(dots, 1, atol=1e-6)


def test_full_isda_checkpoint(trained):
    with pytest.warns(UserWarning, match='different statistics'):
        summary = run_tool(trained, 'full', 'full', 'full', '--directions',
                           '3', '--images', '5', '--compare',
                           str(trained['ckpts']['stock']))
    out = trained['tmp'] / 'full'
    assert summary['statistics'] == 'checkpoint'
    assert summary['covariance'] == 'full'
    assert summary['compare']['statistics'] == 'estimated'
    assert json.loads((out / 'summary.json').read_text()) == summary
    pngs = {p.name for p in out.glob('*.png')}
    assert pngs == {'spectrum.png'} | {
        f'{kind}_{c:03d}_{NAMES[c]}.png' for c in range(CLASSES)
        for kind in ('directions', 'neighbours')}
    assert all((out / p).stat().st_size > 1000 for p in pngs)

    # The directions are those of a float64 numpy eigendecomposition of
    # the covariance the checkpoint holds.
    state = torch.load(trained['ckpts']['full'])['state_dict']
    cov = state['head.isda.estimator.covariance'].double().numpy()
    mean = state['head.isda.estimator.mean'].double().numpy()
    arrays = np.load(out / 'arrays.npz')
    for i, entry in enumerate(summary['classes']):
        c = entry['index']
        values, vectors = np.linalg.eigh(cov[c])
        values, vectors = values[::-1][:3], vectors[:, ::-1][:, :3].T
        assert np.all(-np.diff(values) > 1e-6 * values[0])  # distinct
        assert_same_directions(arrays['directions'][i], vectors)
        np.testing.assert_allclose(entry['shares'],
                                   values / np.trace(cov[c]), rtol=1e-6)
        assert entry['count'] == PER_CLASS and entry['extracted'] == PER_CLASS
        assert entry['compare_shares'][0] > 0

        # Each row: the class's images by increasing projection, from its
        # extreme to its extreme.
        features = dict(zip(arrays['paths'], arrays['features']))
        own = arrays['features'][arrays['labels'] == c].astype(np.float64)
        for row, v in zip(entry['rows'], arrays['directions'][i]):
            proj = [(features[p] - mean[c]) @ v for p in row]
            assert len(row) == 5 and np.all(np.diff(proj) >= 0)
            everything = (own - mean[c]) @ v
            assert proj[0] == pytest.approx(everything.min())
            assert proj[-1] == pytest.approx(everything.max())
        # Neighbours at t = 0 are the query; elsewhere never the query.
        for near in entry['neighbours']:
            assert near['images'][2] == near['query']
            assert near['query'] not in near['images'][:2] + near['images'][3:]


def test_diagonal_checkpoint_in_a_stock_config(trained):
    summary = run_tool(trained, 'stock', 'diagonal', 'diag', '--classes',
                       'class2', 'class0', '--directions', '4')
    assert summary['statistics'] == 'checkpoint'
    assert summary['covariance'] == 'diagonal'
    assert [e['name'] for e in summary['classes']] == ['class2', 'class0']
    var = torch.load(trained['ckpts']['diagonal'])['state_dict'][
        'head.isda.estimator.covariance'].double().numpy()
    arrays = np.load(trained['tmp'] / 'diag' / 'arrays.npz')
    for i, entry in enumerate(summary['classes']):
        top = np.argsort(-var[entry['index']], kind='stable')[:4]
        np.testing.assert_array_equal(arrays['directions'][i],
                                      np.eye(DIM)[top])
        np.testing.assert_allclose(
            entry['shares'], var[entry['index'], top] / var[entry['index']]
            .sum(), rtol=1e-6)


def test_stock_checkpoint_estimates(trained, capsys):
    summary = run_tool(trained, 'stock', 'stock', 'stock', '--images', '3',
                       '--directions', '2')
    assert 'stock.pth holds no ISDA statistics (no *.isda.estimator.* ' \
        "buffers: a stock model; the config's head is LinearClsHead); " \
        'estimating them (full covariance)' in capsys.readouterr().out
    assert summary['statistics'] == 'estimated'
    arrays = np.load(trained['tmp'] / 'stock' / 'arrays.npz')
    features = arrays['features'].astype(np.float64)
    for i, c in enumerate(arrays['classes']):
        own = features[arrays['labels'] == c]
        np.testing.assert_allclose(arrays['mean'][i], own.mean(0),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(arrays['covariance'][i],
                                   np.cov(own, rowvar=False, bias=True),
                                   rtol=1e-9, atol=1e-12)
        assert arrays['count'][i] == len(own) == PER_CLASS

    # The features are the classifier's input: LeNet-5 then pooling, on the
    # image normalised as the data preprocessor does.
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    model = MODELS.build(Config.fromfile(trained['configs']['stock']).model)
    load_checkpoint(model, str(trained['ckpts']['stock']), logger='silent')
    path = str(arrays['paths'][0])
    image = torch.from_numpy(cv2.imread(path, cv2.IMREAD_GRAYSCALE))
    with torch.no_grad():
        feature = model.neck(model.backbone(
            (image[None, None].float() - 127.5) / 127.5))[-1][0]
    np.testing.assert_allclose(arrays['features'][0], feature.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_train_split_uses_the_test_pipeline(trained):
    """The train dataloader's images through the test pipeline: the same
    features as the test dataloader (same folder), despite RandomFlip."""
    from mmengine.config import Config

    from isda_mm.analysis import features as F
    run_tool(trained, 'stock', 'stock', 'train', '--split', 'train',
             '--classes', 'class1', '--images', '2', '--directions', '1')
    train = np.load(trained['tmp'] / 'train' / 'arrays.npz')
    assert set(train['labels']) == {1} and len(train['labels']) == PER_CLASS

    cfg = Config.fromfile(trained['configs']['stock'])
    model, _ = F.build_model(cfg, str(trained['ckpts']['stock']))
    dataset = F.build_dataset(cfg, 'test')
    indices, labels = F.select_samples(dataset, [1])
    assert list(labels) == [1] * PER_CLASS
    test = F.extract_features(model, dataset, indices, progress=False)
    np.testing.assert_array_equal(train['paths'], test['paths'])
    np.testing.assert_array_equal(train['features'], test['features'])


@pytest.mark.parametrize('args, match', [
    (['--classes', 'class0', 'nope'],
     r"--classes: unknown class 'nope'; the valid names are \['class0'"),
    (['--directions', str(DIM + 1)],
     rf'--directions={DIM + 1} is larger than the feature dimension '
     rf'A={DIM}'),
    (['--max-samples', '2'],
     r"class 'class2' has no samples among the 2 to extract"),
])
def test_bad_arguments(trained, args, match):
    with pytest.raises(ValueError, match=match):
        run_tool(trained, 'full', 'full', 'bad', *args)


def test_too_few_images(trained, capsys):
    with pytest.raises(SystemExit):
        run_tool(trained, 'full', 'full', 'bad', '--images', '1')
    assert 'argument --images: must be at least 2, got 1' in \
        capsys.readouterr().err


def test_unknown_head_is_named(trained):
    from mmpretrain.registry import MODELS

    from isda_mm.analysis.features import feature_layer
    head = MODELS.build(dict(type='ClsHead'))
    with pytest.raises(ValueError, match='model.head is ClsHead, which'):
        feature_layer(head)


def test_packed_statistics_are_unpacked():
    from isda_mm.analysis import find_statistics
    from isda_mm.core import CovarianceEstimator
    features, labels = torch.randn(40, 6), torch.arange(40) % 3
    states = []
    for packed in (False, True):
        est = CovarianceEstimator(3, 6, packed=packed)
        est.update(features, labels)
        states.append(find_statistics(est.state_dict(
            prefix='head.isda.estimator.')))
    assert states[1].prefix == 'head.isda.estimator.'
    assert states[1].kind == 'full'
    torch.testing.assert_close(states[1].covariance, states[0].covariance)
    assert find_statistics({'head.fc.weight': torch.zeros(3, 6)}) is None


def test_order_and_neighbours_along_a_line():
    from isda_mm.analysis import augmented_neighbours, order_by_projection
    t = torch.tensor([3., -1., 0., 2., -2., 1.])
    v = torch.tensor([0.6, 0.8])
    features = t[:, None] * v + torch.tensor([1., 1.])
    mean = torch.tensor([1., 1.])
    assert order_by_projection(features, mean, v, 6).tolist() == [
        4, 1, 2, 5, 3, 0]
    assert order_by_projection(features, mean, v, 2).tolist() == [4, 0]
    # From the sample at 0 (row 2), steps of one unit land on -1 and 1 ...
    assert augmented_neighbours(features, 2, v, 1.0, (-1, 0, 1)).tolist() \
        == [1, 2, 5]
    # ... and a step of 0.1 would be the query itself, which is excluded.
    assert 2 not in augmented_neighbours(features, 2, v, 0.1, (1, )).tolist()

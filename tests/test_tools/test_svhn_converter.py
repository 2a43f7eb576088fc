"""tools/dataset_converters/svhn.py on small generated .mat files laid out as
the official ones (X uint8 (32, 32, 3, N), y (N, 1), 10 for digit 0): the
folders, the annotation files, the pixels, and the SVHN config's datasets
reading the result."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

scipy_io = pytest.importorskip('scipy.io')

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / 'configs/_base_/datasets/semi-svhn-1k-labels_bs100.py'
# Labels as the .mat files hold them: 10 is digit 0; every digit appears.
TRAIN_Y = [10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3, 3, 1]
TEST_Y = [5, 10, 2]


def _converter():
    spec = importlib.util.spec_from_file_location(
        'svhn_converter', ROOT / 'tools/dataset_converters/svhn.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


svhn = _converter()


def write_mat(path, labels, seed, x=None, y=None):
    """A .mat file as the official ones: random RGB digits, labels (N, 1)."""
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
    if y is None:
        y = np.asarray(labels, dtype=np.uint8)[:, None]
    scipy_io.savemat(str(path), {'X': x, 'y': y})
    return x


@pytest.fixture
def converted(tmp_path):
    mats = tmp_path / 'mat'
    mats.mkdir()
    xs = {'train': write_mat(mats / 'train_32x32.mat', TRAIN_Y, 0),
          'test': write_mat(mats / 'test_32x32.mat', TEST_Y, 1)}
    out = tmp_path / 'svhn'
    svhn.main([str(mats), '--out-dir', str(out)])
    return out, xs


def test_layout_and_annotations(capsys, converted):
    out, _ = converted
    assert sorted(p.name for p in out.iterdir()) == ['meta', 'test', 'train']
    assert (out / 'meta/classes.txt').read_text().split() == [
        str(d) for d in range(10)]
    for split, labels in (('train', TRAIN_Y), ('test', TEST_Y)):
        digits = [y % 10 for y in labels]
        lines = (out / f'meta/{split}.txt').read_text().splitlines()
        assert lines == [f'{d}/{i:05d}.png {d}' for i, d in enumerate(digits)]
        assert sorted(p.name for p in (out / split).iterdir()) == [
            str(d) for d in range(10)]
        files = sorted(p.relative_to(out / split).as_posix()
                       for p in (out / split).glob('*/*.png'))
        assert files == sorted(line.split()[0] for line in lines)
    # Digit 0 is label 0: the files' 10s are in folder 0.
    assert (out / 'train/0/00000.png').is_file()
    assert (out / 'train/0/00010.png').is_file()
    assert (out / 'test/0/00001.png').is_file()
    printed = capsys.readouterr().out
    assert 'train: 14/14 images' in printed and 'test: 3/3 images' in printed


def test_pixels_decode_to_x(converted):
    out, xs = converted
    for split, labels in (('train', TRAIN_Y), ('test', TEST_Y)):
        for i, y in enumerate(labels):
            path = out / split / str(y % 10) / f'{i:05d}.png'
            rgb = np.asarray(Image.open(path))
            assert rgb.dtype == np.uint8 and rgb.shape == (32, 32, 3)
            np.testing.assert_array_equal(rgb, xs[split][..., i])
            # mmcv's (and cv2's) default decode is BGR, what the configs'
            # preprocessor (to_rgb=True) expects.
            np.testing.assert_array_equal(
                cv2.imread(str(path))[..., ::-1], xs[split][..., i])


def svhn_config(root):
    """The SVHN config's datasets, pointed at ``root``."""
    cfg = Config.fromfile(str(CONFIG))
    train = cfg.train_dataloader.dataset
    train.num_labels = 10  # one per digit
    for dataset in (train.dataset, cfg.val_dataloader.dataset):
        assert dataset.type == 'CustomDataset'
        assert dataset.data_root == 'data/svhn'
        dataset.data_root = str(root)
        dataset.classes = str(root / 'meta/classes.txt')
    return train, cfg.val_dataloader.dataset


def test_config_datasets_read_the_output(converted):
    from mmpretrain.registry import DATASETS
    from mmpretrain.utils import register_all_modules

    import isda_mm  # noqa: F401  (registers SemiSupervisedDataset)
    register_all_modules()
    out, xs = converted
    train_cfg, test_cfg = svhn_config(out)
    test = DATASETS.build(test_cfg)
    assert test.CLASSES == tuple(str(d) for d in range(10))
    assert list(test.get_gt_labels()) == [y % 10 for y in TEST_Y]
    for i in range(len(TEST_Y)):
        img = test[i]['inputs']  # LoadImageFromFile, PackInputs: CHW, BGR
        np.testing.assert_array_equal(
            img.numpy().transpose(1, 2, 0)[..., ::-1], xs['test'][..., i])
    semi = DATASETS.build(train_cfg)
    assert list(semi.dataset.get_gt_labels()) == [y % 10 for y in TRAIN_Y]
    assert semi.dataset.CLASSES == test.CLASSES
    assert sorted(semi._labels[semi.labeled_indices]) == list(range(10))
    sample = semi[int(semi.labeled_indices[0])]
    assert len(sample['inputs']) == 2  # two views of 3x32x32
    assert tuple(sample['inputs'][0].shape) == (3, 32, 32)


def test_missing_file(tmp_path):
    write_mat(tmp_path / 'train_32x32.mat', TRAIN_Y, 0)
    with pytest.raises(FileNotFoundError, match='test_32x32.mat not found'):
        svhn.main([str(tmp_path), '--out-dir', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()  # nothing written
    svhn.main([str(tmp_path), '--out-dir', str(tmp_path / 'out'),
               '--splits', 'train'])
    assert (tmp_path / 'out/meta/train.txt').is_file()


@pytest.mark.parametrize('x, y, match', [
    (np.zeros((28, 28, 3, 2), np.uint8), None,
     r'X has shape \(28, 28, 3, 2\), expected \(32, 32, 3'),
    (np.zeros((2, 32, 32, 3), np.uint8), None, 'X has shape'),
    (np.zeros((32, 32, 3, 2), np.float64), None, 'X has dtype float64'),
    (None, np.ones((3, 1), np.uint8), r'y has shape \(3, 1\), expected'),
    (None, np.array([[0], [1]], np.uint8), 'y must hold the digits 1-10'),
])
def test_wrong_arrays(tmp_path, x, y, match):
    write_mat(tmp_path / 'train_32x32.mat', [1, 2], 0, x=x, y=y)
    with pytest.raises(ValueError, match=match):
        svhn.main([str(tmp_path), '--out-dir', str(tmp_path / 'out'),
                   '--splits', 'train'])


def test_missing_array(tmp_path):
    scipy_io.savemat(str(tmp_path / 'train_32x32.mat'),
                     {'images': np.zeros((32, 32, 3, 1), np.uint8)})
    with pytest.raises(ValueError, match=r"no X or y array \(found: "
                       r"\['images'\]\)"):
        svhn.main([str(tmp_path), '--out-dir', str(tmp_path / 'out'),
                   '--splits', 'train'])

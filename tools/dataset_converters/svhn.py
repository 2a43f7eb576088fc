"""Convert the official SVHN ``.mat`` files to the layout the configs read.

SVHN (Netzer et al., *Reading Digits in Natural Images with Unsupervised
Feature Learning*, NIPS Workshop 2011) ships its cropped digits as MATLAB
files, ``{train,test,extra}_32x32.mat`` from
http://ufldl.stanford.edu/housenumbers/, each holding ``X``, uint8 of shape
(32, 32, 3, N) in RGB, and ``y``, of shape (N, 1), the digit with 10 for
digit 0. mmpretrain has no SVHN dataset, so
``configs/_base_/datasets/semi-svhn-1k-labels_bs100.py`` reads the images
as files through ``CustomDataset``; this script writes them as::

    OUT_DIR/train/<digit>/<i:05d>.png     i: the image's index in the .mat
    OUT_DIR/test/<digit>/<i:05d>.png
    OUT_DIR/meta/classes.txt              '0' ... '9', one a line
    OUT_DIR/meta/{train,test}.txt         '<digit>/<i:05d>.png <digit>'

with label ``d`` for digit ``d`` (the files' 10 becomes 0). The PNGs are
RGB and decode to exactly ``X``; mmcv reads them as BGR by default and the
configs' data preprocessor (``to_rgb=True``) turns them back::

    python tools/dataset_converters/svhn.py FOLDER_WITH_MAT_FILES \\
        [--out-dir data/svhn] [--splits train test [extra]]
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

import cv2
import numpy as np

SPLITS = ('train', 'test', 'extra')
URL = 'http://ufldl.stanford.edu/housenumbers/'
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments (``argv``; ``sys.argv[1:]`` when None)."""
    parser = argparse.ArgumentParser(
        description='Convert SVHN {train,test,extra}_32x32.mat files to '
        'PNG folders and CustomDataset annotation files.')
    parser.add_argument(
        'mat_dir', help='folder holding the official <split>_32x32.mat files')
    parser.add_argument(
        '--out-dir', default='data/svhn',
        help='output folder (default: data/svhn, where the configs read)')
    parser.add_argument(
        '--splits', nargs='+', default=['train', 'test'], choices=SPLITS,
        help='splits to convert (default: train test)')
    return parser.parse_args(argv)


def load_mat(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Read one SVHN ``.mat`` file.

    Args:
        path (str): A ``<split>_32x32.mat`` file.

    Returns:
        tuple[np.ndarray, np.ndarray]: The images, uint8 (N, 32, 32, 3) in
        RGB, and the labels, int64 (N,) in 0-9 (digit 0 is 0).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file lacks ``X`` or ``y``, or they have the wrong
            shape, type or values.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'svhn: {path} not found; download {osp.basename(path)} from '
            f'{URL} into that folder, or drop its split from --splits')
    try:
        from scipy.io import loadmat
    except ImportError as error:  # scipy comes with scikit-learn
        raise ImportError(
            'svhn: reading the .mat files needs scipy; pip install scipy'
        ) from error
    mat = loadmat(path)
    missing = [key for key in ('X', 'y') if key not in mat]
    if missing:
        raise ValueError(
            f'svhn: {path} has no {" or ".join(missing)} array (found: '
            f'{sorted(k for k in mat if not k.startswith("__"))}); is it '
            f'one of the cropped-digit files <split>_32x32.mat of {URL}?')
    images, labels = mat['X'], mat['y']
    if images.ndim != 4 or images.shape[:3] != IMAGE_SHAPE:
        raise ValueError(
            f'svhn: {path}: X has shape {images.shape}, expected '
            f'{IMAGE_SHAPE + ("N", )} (height, width, RGB, images)')
    if images.dtype != np.uint8:
        raise ValueError(
            f'svhn: {path}: X has dtype {images.dtype}, expected uint8')
    num = images.shape[3]
    if labels.shape not in ((num, 1), (num, )):
        raise ValueError(
            f'svhn: {path}: y has shape {labels.shape}, expected ({num}, 1), '
            f'one label per image of X')
    labels = labels.reshape(num)
    if not np.issubdtype(labels.dtype, np.number) or np.any(
            (labels < 1) | (labels > NUM_CLASSES) | (labels % 1 != 0)):
        raise ValueError(
            f'svhn: {path}: y must hold the digits 1-10 (10 for digit 0); '
            f'found values in [{labels.min()}, {labels.max()}]')
    labels = labels.astype(np.int64) % NUM_CLASSES
    return np.ascontiguousarray(images.transpose(3, 0, 1, 2)), labels


def convert_split(images: np.ndarray, labels: np.ndarray, out_dir: str,
                  split: str) -> List[str]:
    """Write one split's images and its annotation file.

    Args:
        images (np.ndarray): uint8 (N, 32, 32, 3), RGB.
        labels (np.ndarray): (N,) digits 0-9.
        out_dir (str): The dataset folder (``data/svhn``).
        split (str): ``'train'``, ``'test'`` or ``'extra'``.

    Returns:
        list[str]: The annotation lines, ``'<digit>/<i:05d>.png <digit>'``.
    """
    for digit in range(NUM_CLASSES):
        os.makedirs(osp.join(out_dir, split, str(digit)), exist_ok=True)
    num, lines = len(images), []
    step = max(1, num // 10)
    for i, (image, digit) in enumerate(zip(images, labels)):
        name = f'{digit}/{i:05d}.png'
        path = osp.join(out_dir, split, name)
        # cv2 writes BGR arrays: reverse the channels so that the file is RGB.
        if not cv2.imwrite(path, image[..., ::-1]):
            raise OSError(f'svhn: could not write {path}')
        lines.append(f'{name} {digit}\n')
        if (i + 1) % step == 0 or i + 1 == num:
            print(f'{split}: {i + 1}/{num} images', flush=True)
    with open(osp.join(out_dir, 'meta', f'{split}.txt'), 'w') as f:
        f.writelines(lines)
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    """Convert the splits named on the command line (``argv``)."""
    args = parse_args(argv)
    # Check every file before writing anything.
    paths = {
        split: osp.join(args.mat_dir, f'{split}_32x32.mat')
        for split in dict.fromkeys(args.splits)
    }
    absent = [p for p in paths.values() if not osp.isfile(p)]
    if absent:
        raise FileNotFoundError(
            f'svhn: {", ".join(absent)} not found; download the files from '
            f'{URL} into {args.mat_dir}, or drop their splits from --splits')
    os.makedirs(osp.join(args.out_dir, 'meta'), exist_ok=True)
    with open(osp.join(args.out_dir, 'meta', 'classes.txt'), 'w') as f:
        f.writelines(f'{digit}\n' for digit in range(NUM_CLASSES))
    for split, path in paths.items():
        print(f'{split}: reading {path}', flush=True)
        images, labels = load_mat(path)
        convert_split(images, labels, args.out_dir, split)
    print(f'done: {", ".join(paths)} in {args.out_dir}', flush=True)


if __name__ == '__main__':
    sys.exit(main())

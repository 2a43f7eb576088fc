"""The main job: LeNet-5 on real handwritten digits, with and without ISDA.

Exports the UCI digits that scikit-learn ships (1797 images, 8x8, no
download) to ``data/digits/``, trains the two configs of
``configs/classification/demo/`` with ``tools/train.py`` (same seed, same
schedule), then prints a side-by-side table and writes it to
``work_dirs/demo/results.md``, with both training curves in
``work_dirs/demo/curves.png``::

    python tools/demo.py [--epochs 30] [--seed 0] [--work-dir DIR]
        [--data-root DIR]

Relative ``--work-dir`` and ``--data-root`` are taken from the repository
root (``make demo`` uses the defaults above); the digits are exported to
``--data-root`` unless its ``test/`` folder already exists.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    'baseline': 'configs/classification/demo/lenet5_1xb64-30e_digits.py',
    'ISDA': 'configs/classification/demo/lenet5_1xb64-isda-30e_digits.py',
}


def export_digits(root: Path, seed: int = 0, test_fraction: float = 0.25):
    """Write the digits as PNG folders (one per class), once."""
    if (root / 'test').is_dir():
        return
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8)
    split = train_test_split(np.arange(len(images)), test_size=test_fraction,
                             stratify=digits.target, random_state=seed)
    for name, indices in zip(('train', 'test'), split):
        for i in indices:
            folder = root / name / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f'{i:04d}.png'), images[i])
    print(f'exported {len(split[0])} train / {len(split[1])} test digits '
          f'to {root}', flush=True)


def train(name: str, config: str, work_dir: Path, data_root: Path,
          args) -> dict:
    print(f'training {name}: {config}', flush=True)
    options = [f'train_cfg.max_epochs={args.epochs}',
               f'param_scheduler.T_max={args.epochs}',
               f'default_hooks.checkpoint.interval={args.epochs}',
               f'randomness.seed={args.seed}']
    # The merged config holds a copy of data_root in each dataloader.
    options += [f'{loader}.dataset.data_root={data_root}'
                for loader in ('train_dataloader', 'val_dataloader',
                               'test_dataloader')]
    subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), config,
                    '--work-dir', str(work_dir), '--cfg-options'] + options,
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    scalars = max(work_dir.glob('*/vis_data/scalars.json'),
                  key=os.path.getmtime)
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    train_log = [r for r in records if 'loss' in r]
    val_log = [r for r in records if 'accuracy/top1' in r]
    return dict(
        name=name,
        config=config,
        iters=[r['step'] for r in train_log],
        loss=[r['loss'] for r in train_log],
        epochs=[r['step'] for r in val_log],
        accuracy=[r['accuracy/top1'] for r in val_log],
        # Skip the first logged interval: it holds the warm-up.
        time=float(np.median([r['time'] for r in train_log[1:]])))


def report(runs: list, out: Path) -> str:
    base = runs[0]['time']
    lines = [
        '| model | final top-1 (%) | best top-1 (%) | time / iter (ms) '
        '| ISDA overhead |', '|---|---|---|---|---|'
    ]
    for run in runs:
        overhead = ('—' if run is runs[0] else
                    f'{100 * (run["time"] / base - 1):+.0f}%')
        lines.append(
            f'| {run["name"]} | {run["accuracy"][-1]:.2f} | '
            f'{max(run["accuracy"]):.2f} | {1000 * run["time"]:.1f} | '
            f'{overhead} |')
    table = '\n'.join(lines)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for run in runs:
        ax_loss.plot(run['iters'], run['loss'], label=run['name'])
        ax_acc.plot(run['epochs'], run['accuracy'], label=run['name'])
    ax_loss.set(xlabel='iteration', ylabel='training loss (ISDA: bound)',
                title='training loss')
    ax_acc.set(xlabel='epoch', ylabel='top-1 (%)', title='test accuracy')
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle('LeNet-5 on UCI digits, with and without ISDA')
    fig.tight_layout()
    fig.savefig(out / 'curves.png', dpi=100)
    (out / 'results.md').write_text(table + '\n')
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=30)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='where the runs, table and curves go')
    parser.add_argument('--data-root', default='data/digits',
                        help='where the digits are exported')
    args = parser.parse_args(argv)
    out = ROOT / args.work_dir
    data_root = ROOT / args.data_root
    export_digits(data_root)
    runs = [train(name, config, out / name, data_root, args)
            for name, config in CONFIGS.items()]
    table = report(runs, out)
    print(f'\nLeNet-5, UCI digits, {args.epochs} epochs, seed {args.seed}:'
          f'\n\n{table}\n\nCurves: {out / "curves.png"}')


if __name__ == '__main__':
    main()

"""Show the semantic directions of a trained classifier's class features.

ISDA (Wang et al., "Regularizing Deep Networks with Semantic Data
Augmentation", T-PAMI 2021) translates each feature along the covariance of
its class. For a few classes this tool draws the real images ordered along
the top eigenvectors of that covariance, the real images nearest to a
translated feature, and the explained-variance spectrum (against a second
checkpoint with ``--compare``), and writes ``summary.json``::

    python tools/analysis_tools/isda_directions.py CONFIG CHECKPOINT \\
        [--split train|val|test] [--classes NAME ...] [--directions K] \\
        [--images M] [--max-samples N] [--compare CKPT2] [--estimate] \\
        [--device cpu|cuda] --out DIR

The statistics are those the checkpoint's ISDA head kept; a stock
checkpoint has none, and they are estimated from the extracted features.
"""
import argparse

from mmengine.config import DictAction

from isda_mm.analysis.report import STEPS, make_report


def at_least(minimum: int):
    """An argparse type: an int of at least ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f'must be at least {minimum}, got {value}')
        return value

    return parse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Semantic directions (class-covariance eigenvectors) '
        'of a trained classifier, as pictures of real images')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--split', choices=['train', 'val', 'test'], default='val',
        help='dataloader whose images are shown, always with the test '
        'pipeline (default: val)')
    parser.add_argument(
        '--classes', nargs='+', metavar='NAME',
        help='class names (default: all, at most the first ten)')
    parser.add_argument('--directions', type=at_least(1), default=3,
                        metavar='K', help='directions per class (default 3)')
    parser.add_argument('--images', type=at_least(2), default=8,
                        metavar='M',
                        help='images per direction row (default 8)')
    parser.add_argument(
        '--max-samples', type=at_least(1), metavar='N',
        help='extract at most N images, the classes taking turns '
        '(default: all of the chosen classes)')
    parser.add_argument(
        '--queries', type=at_least(1), default=3,
        help='query images per class in the neighbours picture (default 3)')
    parser.add_argument(
        '--compare', metavar='CKPT2',
        help='a second checkpoint of the same model (e.g. the baseline); '
        'its spectrum is drawn dashed')
    parser.add_argument(
        '--estimate', action='store_true',
        help='estimate the statistics from the extracted features even '
        'when the checkpoint holds ISDA statistics (like for like with '
        '--compare)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--save-arrays', action='store_true',
                        help='also write arrays.npz (features, statistics, '
                        'directions)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, e.g. '
        'val_dataloader.batch_size=64')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    summary = make_report(
        args.config, args.checkpoint, args.out, split=args.split,
        classes=args.classes, directions=args.directions,
        images=args.images, max_samples=args.max_samples,
        compare=args.compare, device=args.device, estimate=args.estimate,
        queries=args.queries, steps=STEPS, save_arrays=args.save_arrays,
        cfg_options=args.cfg_options)
    print(f'statistics: {summary["statistics"]} ({summary["covariance"]}); '
          f'{summary["num_samples"]} {args.split} images')
    for entry in summary['classes']:
        shares = ', '.join(f'{100 * s:.1f}%' for s in entry['shares'])
        print(f'class {entry["name"]}: trace {entry["trace"]:.4g}, top '
              f'directions {shares}')
    print(f'wrote {len(summary["files"])} pictures and summary.json to '
          f'{args.out}')
    return summary


if __name__ == '__main__':
    main()

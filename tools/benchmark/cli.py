"""What ISDA costs, in five tables.

``python tools/benchmark`` prints all five; name some to print only those:

- ``core``: one ISDA step of ``isda_mm`` against the dense algorithm of the
  released implementation, time and peak memory, and for full covariances
  the step against the arithmetic limit (:mod:`.core`);
- ``heads``: a training step through real heads of the three toolkits,
  stock against the ISDA twin, with the ISDA core alone as the floor
  (:mod:`.heads`);
- ``model``: whole training iterations, baseline config against its ISDA
  twin (:mod:`.model`);
- ``soft``: one ISDA step on Mixup targets against the hard-label step
  (:mod:`.soft`);
- ``semi``: a semi-supervised training iteration (ConvNet13, batch 100) of
  each method, plain against + ISDA (:mod:`.semi`).

Examples::

    python tools/benchmark                     # all five, on the CPU
    python tools/benchmark heads model --device cuda
    python tools/benchmark core --shapes 16x5x8:full --repeats 3
"""
import argparse
import datetime
import json
import time
from typing import Optional, Sequence

import torch

from . import core, heads, model, semi, soft
from .measure import RESULT_TAG, device_name

TABLES = dict(core=core, heads=heads, model=model, soft=soft, semi=semi)
TITLES = dict(
    core='One ISDA step: isda_mm against the dense algorithm',
    heads='A training step through real heads (forward, loss, backward)',
    model='Whole training iterations, data in memory',
    soft='One ISDA step on soft targets (Mixup) against hard labels',
    semi='Semi-supervised training iterations, plain method against + '
    'ISDA')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='What ISDA costs: core step, real heads, whole models.')
    parser.add_argument(
        'tables', nargs='*', metavar='TABLE',
        help='tables to print, of ' + ', '.join(TABLES) + ' (default: all)')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu',
                        help='where to run (default: cpu)')
    parser.add_argument(
        '--repeats', type=int, default=None,
        help='timed steps per measurement (default: as many as fit in a '
        'few seconds, at least 3)')
    parser.add_argument(
        '--shapes', nargs='+', type=core.parse_shape,
        default=list(core.SHAPES), metavar='SHAPE',
        help='core rows: ' + ', '.join(s.name for s in core.SHAPES) +
        ' or NxCxA:full|diagonal (default: the named rows)')
    parser.add_argument('--ratio', type=float, default=0.5,
                        help='lambda of the core rows (default: 0.5)')
    parser.add_argument(
        '--rtol', type=float, default=1e-4,
        help="tolerance of the core rows' agreement check, relative to "
        'each quantity (default: 1e-4)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: as torch chooses)')
    parser.add_argument('--output',
                        help='also write the tables as Markdown to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error('--repeats must be at least 1')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no CUDA device')
    unknown = set(args.tables) - set(TABLES)
    if unknown:
        parser.error(f'unknown tables {sorted(unknown)}: choose from '
                     f'{list(TABLES)}')
    args.tables = args.tables or list(TABLES)
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the benchmark and print the tables.

    Returns:
        dict: The results of each table printed (empty in worker mode).

    Raises:
        BenchmarkError: If a worker fails or a check does not hold.
    """
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.worker:
        spec = json.loads(args.worker)
        result = TABLES[spec['mode']].worker(spec)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return {}
    header = (f'{datetime.datetime.now():%Y-%m-%d %H:%M}, '
              f'{device_name(args.device)} ({args.device}), '
              f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(header, flush=True)
    start = time.perf_counter()
    results, text = {}, [header]
    for name in args.tables:
        print(f'\n{TITLES[name]}', flush=True)
        begin = time.perf_counter()
        results[name] = TABLES[name].run(args)
        table = TABLES[name].format_table(results[name])
        print(f'\n{table}\n\n({time.perf_counter() - begin:.0f} s)',
              flush=True)
        text += ['', f'{TITLES[name]}:', '', table]
    print(f'\ntotal {time.perf_counter() - start:.0f} s', flush=True)
    if args.output:
        with open(args.output, 'w') as f:
            f.write('\n'.join(text) + '\n')
    return results

"""The ``isda-config`` command line: arguments, the per-head report and
exit status (the command is documented in :mod:`isda_mm.twin`)."""
import argparse
import importlib.util
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

from .decide import ConfigDecision, Head, decide, error_text
from .heads import path_text
from .meta import quiet
from .parsing import load_config, resolve_config, zoo_scope
from .settings import COVARIANCES
from .write import base_reference, default_output, make_twin
from .zoo import coverage_table, walk_zoo


def head_line(head: Head) -> str:
    """One line of the per-head report."""
    where = f'{path_text(head.path)} ({head.type})'
    decision = head.decision
    if decision.outcome == 'enabled':
        settings = ', '.join(f'{k}={v!r}'
                             for k, v in decision.settings.items())
        return f'  ISDA  {where} -> {head.twin}' + (
            f' ({settings})' if settings else '')
    label = 'stock' if decision.outcome == 'refused' else '????'
    return f'  {label} {where}: {decision.outcome}: {decision.reason}'


def report(config: str, decision: ConfigDecision) -> List[str]:
    """The per-head report of one config.

    Args:
        config (str): the config as given.
        decision (ConfigDecision): its heads.

    Returns:
        list[str]: the report's lines.
    """
    lines = [f'{config} ({decision.scope or "no toolkit"}): '
             f'{len(decision.heads)} classifier head(s), '
             f'{len(decision.enabled)} with ISDA']
    lines += [head_line(h) for h in decision.heads]
    if not decision.heads:
        why = decision.problem or 'no head of the model has an ISDA twin'
        lines.append(f'  no classifier head found: {why}')
        if decision.already_isda:
            lines.append('  (already ISDA: ' + ', '.join(
                path_text(p) for p in decision.already_isda) + ')')
    elif not decision.enabled:
        lines.append('  no head can take ISDA: all were refused or '
                     'undecided')
    return lines


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``isda-config``."""

    def non_negative(text):
        value = float(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f'must be >= 0, got {text}')
        return value

    parser = argparse.ArgumentParser(
        prog='isda-config',
        description='Write the ISDA twin of an OpenMMLab config: every '
        'classifier head that has an ISDA twin gets it (type, lambda0, '
        'covariance), as a thin child config.',
        epilog='Exit status: 0 if a head got ISDA, 1 if none could, 2 for '
        'usage errors.')
    parser.add_argument(
        'config', nargs='?',
        help='config file, or zoo config by scope '
        '(mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py)')
    parser.add_argument(
        '--out', help='twin config path (default: next to CONFIG, or in the '
        'current directory for a scope path, with "-isda" in its name)')
    parser.add_argument('--lambda0', type=non_negative,
                        help='lambda0 of every ISDA head (default: the '
                        "paper's per dataset and, on ImageNet, per backbone "
                        'family; see isda_mm.twin.settings)')
    parser.add_argument('--covariance', choices=COVARIANCES,
                        help='covariance of every ISDA head (default: per '
                        'toolkit)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the twin instead of writing it')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing output file')
    parser.add_argument(
        '--zoo', nargs='+', metavar='PACKAGE',
        help='instead of CONFIG: walk the installed zoos of these toolkits '
        '(e.g. mmpretrain mmseg mmdet) and print the Markdown coverage '
        'table')
    return parser


def run_zoo(packages: Sequence[str], out=sys.stdout) -> int:
    """``--zoo``: walk the zoos, print the coverage table.

    Args:
        packages (Sequence[str]): installed toolkits.
        out (file): where the table goes. Defaults to stdout.

    Returns:
        int: the exit status, 0.
    """
    walks = []
    for package in packages:
        walks.append(walk_zoo(package))
        print(f'{package}: {walks[-1].configs} configs in '
              f'{walks[-1].seconds:.1f} s ({walks[-1].cpu_seconds:.1f} s '
              'CPU)', file=sys.stderr)
    print(coverage_table(walks), file=out)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``isda-config`` and ``tools/isda_config.py``.

    Args:
        argv (Sequence[str], optional): the arguments. Defaults to None
            (``sys.argv[1:]``).

    Returns:
        int: the exit status (argparse exits with 2 itself).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.zoo:
        if args.config or args.out:
            parser.error('--zoo takes no CONFIG or --out')
        for package in args.zoo:
            if importlib.util.find_spec(package) is None:
                parser.error(f'{package} is not installed')
        return run_zoo(args.zoo)
    if not args.config:
        parser.error('CONFIG is required (or --zoo PACKAGE ...)')
    out = args.out or default_output(args.config)
    if not args.dry_run and osp.exists(out) and not args.force:
        parser.error(f'{out} exists; pass --force to overwrite it, or --out')
    try:
        path, scope = resolve_config(args.config)
        with quiet():
            cfg = load_config(path)
    except Exception as e:
        parser.error(f'cannot read {args.config}: {error_text(e)}')
    try:
        decision = decide(cfg, scope or zoo_scope(path), args.lambda0,
                          args.covariance)
    except ImportError as e:  # the config's custom_imports
        parser.error(f'cannot import the custom_imports of {args.config}: '
                     f'{error_text(e)}')
    print('\n'.join(report(args.config, decision)))
    if not decision.enabled:
        return 1
    base = base_reference(args.config, out)
    try:
        with quiet():
            text = make_twin(cfg, decision, base,
                             args.config if scope else path)
    except (RuntimeError, TypeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if args.dry_run:
        print(f'--- {out} (not written)\n{text}', end='')
        return 0
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        f.write(text)
    print(f'wrote {out}')
    return 0

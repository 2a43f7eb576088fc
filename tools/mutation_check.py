"""Plant each named bug of ``tests/mutants.py`` and check the tests catch it.

    python tools/mutation_check.py [--mutant NAME ...] [--baseline]
        [--jobs N] [--list]

One pytest process per mutant (``-p mutants --mutant NAME``) runs the tests
that must catch it: the adapters' float64 reference tests
(``test_loss_matches_reference``, one per adapter test module, parametrized
so each id names the stock head). A mutant survives if its tests pass. For
``lambda_scale`` and ``estimator_features`` every registered ISDA twin
(``ISDA<Head>`` in mmpretrain's, mmseg's and mmdet's ``MODELS``) and the
custom head of ``projects/isda_custom_head`` must also be caught by a
failing test whose id names its head: a twin no test checks survives even
if others fail. A patch target that no longer exists, or a run that
collects nothing, is an error. ``--baseline`` runs the same selections
without a mutant, which must pass. Exits non-zero naming every survivor.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / 'tests'
REFERENCE = 'test_loss_matches_reference'
# Heads written by users that must be caught alongside the twins.
CUSTOM_HEADS = ('TwoLayerISDAHead', )


class Selection(NamedTuple):
    """The tests that must catch a mutant: the reference tests of these
    test folders; ``every_head``: each twin must fail by name (else one
    failure suffices, and the run stops at it)."""
    folders: tuple
    every_head: bool = False


ALL = ('test_classification', 'test_segmentation', 'test_detection',
       'test_engine')
SELECTIONS: Dict[str, Selection] = {
    'lambda_scale': Selection(ALL, every_head=True),
    'estimator_features': Selection(ALL, every_head=True),
    'classifier_weight': Selection(ALL),
    'ignore_index': Selection(('test_segmentation', 'test_detection')),
    'class_weights': Selection(('test_classification', )),
    'soft_anchor': Selection(('test_classification', )),
    'loss_reduction': Selection(('test_classification', )),
}


def reference_modules(folders: Iterable[str]) -> List[str]:
    """Test modules under ``tests/<folder>`` that define the reference
    test, relative to the repository root."""
    found = []
    for folder in folders:
        for path in sorted((TESTS / folder).rglob('test_*.py')):
            if re.search(rf'^def {REFERENCE}\(', path.read_text(),
                         re.MULTILINE):
                found.append(str(path.relative_to(ROOT)))
    return found


def names_head(nodeid: str, head: str) -> bool:
    """Whether a test id names ``head`` as a whole word (``LinearClsHead``
    is not named by ``StackedLinearClsHead``)."""
    return re.search(rf'(?<![A-Za-z0-9]){re.escape(head)}(?![A-Za-z0-9])',
                     nodeid.partition('::')[2]) is not None


def uncaught_heads(twins: Iterable[str], failed: List[str]) -> List[str]:
    """Twins (``scope:ISDA<Head>``) and custom heads that no failed test
    names."""
    heads = [twin.split(':')[-1][len('ISDA'):] for twin in twins]
    return [head for head in [*heads, *CUSTOM_HEADS]
            if not any(names_head(nodeid, head) for nodeid in failed)]


class Outcome(NamedTuple):
    mutant: Optional[str]
    ran: int
    first_failure: str
    survivors: List[str]
    error: str
    seconds: float
    heads: str = '-'  # heads named by a failing test, of those required


def run_selection(mutant: Optional[str], selection: Selection,
                  workdir: Path) -> Outcome:
    """One pytest process with ``mutant`` planted (None: none)."""
    modules = reference_modules(selection.folders)
    label = mutant or '-'.join(('baseline', ) + selection.folders)
    report = workdir / f'{label}.json'
    log = workdir / f'{label}.log'
    command = [sys.executable, '-m', 'pytest', *modules, '-k', REFERENCE,
               '-q', '--tb=line', '-p', 'no:cacheprovider', '-p', 'mutants',
               '--mutant-report', str(report)]
    if mutant is not None:
        command += ['--mutant', mutant]
        if not selection.every_head:
            command.append('-x')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(TESTS), str(ROOT)] + [p for p in [env.get('PYTHONPATH')] if p])
    start = time.monotonic()
    with open(log, 'w') as out:
        rc = subprocess.run(command, cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - start
    error = ''
    if not modules:
        error = f'no module in {selection.folders} defines {REFERENCE}'
    elif rc not in (0, 1) or not report.exists():
        tail = log.read_text().strip().splitlines()[-15:]
        error = f'pytest exited {rc}:\n    ' + '\n    '.join(tail)
    if error:
        return Outcome(mutant, 0, '', [], error, seconds)
    result = json.loads(report.read_text())
    failed, heads = result['failed'], '-'
    survivors = []
    if mutant is None:
        if failed:
            error = 'the unmutated selection fails: ' + ', '.join(failed)
    elif not failed:
        survivors = [mutant]
        if result['hits'] == 0:
            survivors = [f'{mutant} (its patched code never ran)']
    if mutant is not None and selection.every_head:
        required = len(result['twins']) + len(CUSTOM_HEADS)
        uncaught = uncaught_heads(result['twins'], failed)
        heads = f'{required - len(uncaught)}/{required}'
        if failed:
            survivors = uncaught
    return Outcome(mutant, len(result['ran']), failed[0] if failed else '',
                   survivors, error, seconds, heads)


def print_table(outcomes: List[Outcome]) -> None:
    rows = [('mutant', 'tests run', 'heads named', 's',
             'killed by (first failing id)', 'survivors')]
    for o in outcomes:
        survivors = ', '.join(o.survivors) if o.survivors else '-'
        rows.append((o.mutant or 'baseline', str(o.ran), o.heads,
                     f'{o.seconds:.0f}', o.first_failure or '-',
                     'ERROR' if o.error else survivors))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print('  '.join(cell.ljust(w) for cell, w in zip(row, widths)) +
              '  ' + row[5])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--mutant', action='append', choices=SELECTIONS,
                        help='check only these (repeatable); default: all')
    parser.add_argument('--baseline', action='store_true',
                        help='also run each selection without a mutant')
    parser.add_argument('--jobs', type=int, default=2,
                        help='pytest processes at a time (default: 2)')
    parser.add_argument('--list', action='store_true',
                        help='print the mutants and their tests, and exit')
    args = parser.parse_args(argv)
    sys.path.insert(0, str(TESTS))
    from mutants import MUTANTS
    missing = set(MUTANTS) ^ set(SELECTIONS)
    if missing:
        print(f'mutation check: no selection (or no mutant) for '
              f'{sorted(missing)}', file=sys.stderr)
        return 2
    names = args.mutant or list(SELECTIONS)
    if args.list:
        for name in names:
            print(f'{name}: {MUTANTS[name].doc}\n    '
                  + ' '.join(reference_modules(SELECTIONS[name].folders)))
        return 0
    start = time.monotonic()
    runs = [(name, SELECTIONS[name]) for name in names]
    if args.baseline:
        runs += [(None, Selection(folders)) for folders in dict.fromkeys(
            SELECTIONS[name].folders for name in names)]
    with tempfile.TemporaryDirectory() as tmp, \
            ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(run_selection, name, selection, Path(tmp))
                   for name, selection in runs]
        for done in as_completed(futures):
            o = done.result()
            print(f'[mutation-check] {o.mutant or "baseline"}: '
                  f'{"error" if o.error else "done"} ({o.seconds:.0f} s)',
                  flush=True)
        outcomes = [f.result() for f in futures]
    print_table(outcomes)
    total = time.monotonic() - start
    errors = [o for o in outcomes if o.error]
    survivors = [(o.mutant, s) for o in outcomes for s in o.survivors]
    for o in errors:
        print(f'mutation check: {o.mutant or "baseline"}: {o.error}',
              file=sys.stderr)
    if survivors:
        print('mutation check: surviving mutants: ' + '; '.join(
            f'{m}: {s}' if s != m else m for m, s in survivors),
            file=sys.stderr)
    print(f'mutation check: {len(names)} mutants in {total:.0f} s')
    return 1 if errors or survivors else 0


if __name__ == '__main__':
    sys.exit(main())

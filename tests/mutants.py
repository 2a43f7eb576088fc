"""Plant a named bug for a test run: ``pytest -p mutants --mutant NAME``.

A pytest plugin for the mutation check (``tools/mutation_check.py``): each
mutant is a bug the tests must catch, planted at session start by
monkeypatching a name of ``isda_mm``, public where one exists (no source
is rewritten, so a mutant does not depend on line numbers). A patch target
that no longer exists is a usage error (exit code 4), never a mutant that
silently survives or dies.

``--mutant-report PATH`` writes JSON: the mutant, how often its patched code
ran, the tests that ran and those that failed, and the ISDA twins that are
registered (``ISDA<Head>`` classes in each installed toolkit's ``MODELS``).
"""
import functools
import importlib
import inspect
import json
from typing import Callable, Dict, List, NamedTuple, Tuple

import pytest


class Mutant(NamedTuple):
    """A bug: what it does, and the patches that plant it, each a target
    ``'module:attr.path'`` and a function of the original that returns the
    replacement (and calls ``hit()`` whenever the bug acts)."""
    doc: str
    patches: Tuple[Tuple[str, Callable], ...]


def _with_argument(name: str, change: Callable) -> Callable:
    """A wrapper factory: call the original with argument ``name``
    replaced by ``change(value)``, however it was passed."""

    def factory(original, hit):
        signature = inspect.signature(original)

        @functools.wraps(original)
        def mutated(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            hit()
            bound.arguments[name] = change(bound.arguments[name])
            return original(*bound.args, **bound.kwargs)

        return mutated

    return factory


def _ignored_as_first_class(original, hit):
    """``CovarianceEstimator.index``: ignored samples (row K) are given to
    the first class present, so the statistics take them and the augmented
    logits raise them, while the counts stay right."""

    @functools.wraps(original)
    def mutated(*args, **kwargs):
        index = original(*args, **kwargs)
        ignored = index.rows == index.num_present
        if index.num_present and bool(ignored.any()):
            hit()
            index = index._replace(rows=index.rows.masked_fill(ignored, 0))
        return index

    return mutated


def _scored_without_class_weights(original, hit):
    """``_scored_target`` as if the loss had no class weights (the module
    itself still weighs its cross-entropy)."""
    from isda_mm.classification.heads import _cross_entropy

    @functools.wraps(original)
    def mutated(self, *args, **kwargs):
        inner = _cross_entropy(self.loss_module)
        saved = inner.class_weight
        if saved is not None:
            hit()
        inner.class_weight = None
        try:
            return original(self, *args, **kwargs)
        finally:
            inner.class_weight = saved

    return mutated


def _unnormalised(original, hit):

    @functools.wraps(original)
    def mutated(rows):
        hit()
        return rows

    return mutated


def _summed(original, hit):
    """``_reduce_as_loss`` summing over the batch instead of the loss
    module's mean."""

    @functools.wraps(original)
    def mutated(self, per_sample, *args, **kwargs):
        hit()
        return original(self, per_sample, *args, **kwargs) * len(per_sample)

    return mutated


def _times(factor):
    return lambda value: value * factor


MUTANTS: Dict[str, Mutant] = {
    'lambda_scale': Mutant(
        'ISDALoss.augment and augment_soft use 2 x lambda',
        (('isda_mm.core.loss:ISDALoss.augment',
          _with_argument('ratio', _times(2))),
         ('isda_mm.core.loss:ISDALoss.augment_soft',
          _with_argument('ratio', _times(2))))),
    'estimator_features': Mutant(
        'CovarianceEstimator.update receives 2 x features (logits '
        'unchanged)',
        (('isda_mm.core.estimator:CovarianceEstimator.update',
          _with_argument('features', _times(2))), )),
    'classifier_weight': Mutant(
        'the classifier weight ISDALoss hands isda_augment and '
        'isda_augment_soft is scaled by 1.5',
        (('isda_mm.core.loss:isda_augment',
          _with_argument('weight', _times(1.5))),
         ('isda_mm.core.loss:isda_augment_soft',
          _with_argument('weight', _times(1.5))))),
    'ignore_index': Mutant(
        'ignored samples update the statistics and get augmented as the '
        'first class present',
        (('isda_mm.core.estimator:CovarianceEstimator.index',
          _ignored_as_first_class), )),
    'class_weights': Mutant(
        "the soft bound's scored target loses the loss's class weights",
        (('isda_mm.classification.heads:ISDAClsHeadMixin._scored_target',
          _scored_without_class_weights), )),
    'soft_anchor': Mutant(
        'the soft anchor is W^T t with the unnormalised target t',
        (('isda_mm.core.soft:_normalised', _unnormalised), )),
    'loss_reduction': Mutant(
        "the soft bound's extra term is summed over the batch, not "
        'reduced as the loss module reduces',
        (('isda_mm.classification.heads:ISDAClsHeadMixin._reduce_as_loss',
          _summed), )),
}


def resolve(target: str):
    """``(owner, attribute, original)`` of ``'module:attr.path'``.

    Raises:
        LookupError: The module or an attribute on the path is gone.
    """
    module_name, _, path = target.partition(':')
    try:
        owner = importlib.import_module(module_name)
    except ImportError as error:
        raise LookupError(f'{target}: {error}') from error
    *parents, attribute = path.split('.')
    for part in parents:
        if not hasattr(owner, part):
            raise LookupError(f'{target}: {owner!r} has no {part!r}')
        owner = getattr(owner, part)
    # The attribute itself, not one inherited: patching a subclass would
    # leave the classes that define it stock.
    if attribute not in vars(owner):
        raise LookupError(f'{target}: {owner!r} has no {attribute!r}')
    return owner, attribute, vars(owner)[attribute]


def registered_twins() -> List[str]:
    """``scope:ISDA<Head>`` of every ISDA twin registered in an installed
    toolkit (classes made by ``register_isda_heads``; refusals and
    ``ISDALoss`` are not heads)."""
    import isda_mm  # noqa: F401 registers the twins
    from isda_mm.engine.head import ISDAHeadMixin
    twins = []
    for scope in ('mmpretrain', 'mmseg', 'mmdet'):
        try:
            registry = importlib.import_module(f'{scope}.registry').MODELS
        except ImportError:
            continue
        twins += [f'{scope}:{name}'
                  for name, entry in registry.module_dict.items()
                  if name.startswith('ISDA') and isinstance(entry, type)
                  and issubclass(entry, ISDAHeadMixin)]
    return sorted(twins)


def pytest_addoption(parser):
    group = parser.getgroup('mutants', 'planted bugs (tests/mutants.py)')
    group.addoption('--mutant', choices=sorted(MUTANTS), default=None,
                    help='plant this bug for the whole session')
    group.addoption('--mutant-report', default=None, metavar='PATH',
                    help='write the failed test ids (and more) as JSON')


class _Planted:
    """The session's mutant: patches, hit count and test outcomes."""

    def __init__(self, config):
        self.name = config.getoption('--mutant')
        self.report_path = config.getoption('--mutant-report')
        self.hits = 0
        self.ran, self.failed = [], []
        self.patch = pytest.MonkeyPatch()
        if self.name is None:
            return
        for target, factory in MUTANTS[self.name].patches:
            try:
                owner, attribute, original = resolve(target)
            except LookupError as error:
                self.patch.undo()
                raise pytest.UsageError(
                    f'mutant {self.name}: patch target {error}; update '
                    'tests/mutants.py') from error
            self.patch.setattr(owner, attribute,
                               factory(original, self._hit))

    def _hit(self):
        self.hits += 1

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report):
        if report.when == 'call' or (report.when == 'setup'
                                     and not report.passed):
            self.ran.append(report.nodeid)
        if report.failed and report.nodeid not in self.failed:
            self.failed.append(report.nodeid)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter):
        if self.name is not None:
            terminalreporter.write_line(
                f'mutant {self.name} ({MUTANTS[self.name].doc}): acted '
                f'{self.hits} times, {len(self.failed)} tests failed')

    @pytest.hookimpl
    def pytest_sessionfinish(self, session, exitstatus):
        if self.report_path:
            with open(self.report_path, 'w') as f:
                json.dump(dict(mutant=self.name, hits=self.hits,
                               exitstatus=int(exitstatus), ran=self.ran,
                               failed=self.failed,
                               twins=registered_twins()), f, indent=1)

    def undo(self):
        self.patch.undo()


def pytest_configure(config):
    planted = _Planted(config)
    config.pluginmanager.register(planted, 'mutants-planted')
    config.add_cleanup(planted.undo)

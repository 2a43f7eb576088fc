"""The mutation check's parts that need no pytest run of their own: every
mutant's patch targets still exist, a missing one is an error, a mutant
plants and undoes, and a twin is only caught by a test that names it."""
import importlib.util
from pathlib import Path

import mutants
import pytest
import torch

import isda_mm  # noqa: F401
from isda_mm.core import CovarianceEstimator

TOOL = Path(__file__).parents[2] / 'tools' / 'mutation_check.py'
spec = importlib.util.spec_from_file_location('mutation_check', TOOL)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


@pytest.mark.parametrize('name', mutants.MUTANTS)
def test_every_mutant_has_targets_and_tests(name):
    for target, _ in mutants.MUTANTS[name].patches:
        mutants.resolve(target)
    assert check.reference_modules(check.SELECTIONS[name].folders)


@pytest.mark.parametrize('target, missing', [
    ('isda_mm.core.nowhere:f', 'No module named'),
    ('isda_mm.core.loss:ISDALoss.gone', "has no 'gone'"),
    ('isda_mm.core.loss:Nothing.augment', "has no 'Nothing'"),
    # inherited, not defined there: patching it would miss the definer
    ('isda_mm.core.loss:ISDALoss.forward_pre_hooks', 'has no'),
])
def test_a_missing_target_is_an_error(target, missing):
    with pytest.raises(LookupError, match=missing):
        mutants.resolve(target)


def test_a_mutant_acts_and_is_undone():
    target = 'isda_mm.core.estimator:CovarianceEstimator.update'
    owner, attribute, original = mutants.resolve(target)
    factory = dict(mutants.MUTANTS['estimator_features'].patches)[target]
    hits = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(owner, attribute,
                      factory(original, lambda: hits.append(1)))
        est = CovarianceEstimator(2, 3, 'diagonal')
        est.update(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([0]))
    assert hits == [1]
    assert est.mean[0].tolist() == [2.0, 4.0, 6.0]  # twice the features
    assert vars(CovarianceEstimator)['update'] is original


def test_a_twin_is_caught_only_by_a_test_that_names_it():
    failed = ['tests/a.py::test_loss_matches_reference[StackedLinearClsHead-'
              'full-ce]',
              'tests/b.py::test_loss_matches_reference[OCRHead]',
              'tests/c.py::test_loss_matches_reference[TwoLayerISDAHead-x]']
    twins = ['mmpretrain:ISDALinearClsHead', 'mmpretrain:ISDAStackedLinear'
             'ClsHead', 'mmseg:ISDAOCRHead', 'mmdet:ISDASCNetBBoxHead']
    assert check.uncaught_heads(twins, failed) == ['LinearClsHead',
                                                   'SCNetBBoxHead']
    # the module's name is not the test's id
    assert not check.names_head('tests/OCRHead.py::test_x', 'OCRHead')

import os

import pytest
import torch
from hypothesis import HealthCheck, settings
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope

# Property tests (tests/test_core/test_properties.py). ``ci``, the default:
# a fixed set of examples per property, the same on every run; ``dev``
# (HYPOTHESIS_PROFILE=dev): ten times more, new ones each run, and the
# failures kept in the local database (.hypothesis/) to be replayed first.
settings.register_profile(
    'ci', max_examples=200, derandomize=True, deadline=None,
    suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile(
    'dev', max_examples=2000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _default_scope():
    """No test leaves a default scope behind: one set by a Runner or
    ``init_default_scope`` would send the next test's registry look-ups
    to another toolkit's registry."""
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict = saved


@pytest.fixture(autouse=True)
def _message_hub():
    """No test leaves a runner's progress behind: a Runner built in the
    test process publishes ``iter``/``max_iters`` on a new current
    MessageHub, and ISDA's lambda outside a runner must stay lambda0."""
    saved = MessageHub._instance_dict.copy()
    yield
    MessageHub._instance_dict.clear()
    MessageHub._instance_dict.update(saved)

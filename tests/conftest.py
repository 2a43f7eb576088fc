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


def _mm_state():
    """Leave mmengine's global state as it was: a Runner built in the test
    process sets a default scope, which would send later registry look-ups
    to another toolkit's registry, and publishes ``iter``/``max_iters`` on
    a new current MessageHub, where ISDA's lambda outside a runner must
    stay lambda0 (and Mean Teacher must not believe it runs in a runner)."""
    scopes = DefaultScope._instance_dict.copy()
    hubs = MessageHub._instance_dict.copy()
    yield
    DefaultScope._instance_dict = scopes
    MessageHub._instance_dict.clear()
    MessageHub._instance_dict.update(hubs)


# Per test, and per module for runners built in module-scoped fixtures.
_per_test = pytest.fixture(autouse=True, name='_mm_state_per_test')(
    _mm_state)
_per_module = pytest.fixture(autouse=True, scope='module',
                             name='_mm_state_per_module')(_mm_state)

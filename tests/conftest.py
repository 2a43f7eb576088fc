import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope


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

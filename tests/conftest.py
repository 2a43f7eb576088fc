import pytest
import torch
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

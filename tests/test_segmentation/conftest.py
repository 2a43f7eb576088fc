import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Look up registries in mmseg, whatever scope an earlier test left."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield

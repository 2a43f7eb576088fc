import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Look up registries in mmdet, whatever scope an earlier test left."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield

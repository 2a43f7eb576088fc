import pytest

from isda_mm.core import moments


@pytest.fixture(params=['index_add', 'products'])
def segment_sums(request, monkeypatch):
    """Run a test with each way of summing per class: ``index_add_`` (the
    CPU's) and one-hot products (the GPU's), see :mod:`isda_mm.core.moments`.
    """
    products = request.param == 'products'
    monkeypatch.setattr(moments, 'by_products', lambda device: products)
    return request.param

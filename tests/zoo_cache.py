"""The installed zoos, parsed once per test session.

``tests/test_tools/test_isda_config.py`` walks every zoo with the
``isda-config`` decision and ``tests/test_classification/test_zoo.py``
builds every mmpretrain model: both read the same parsed configs from here
instead of parsing the zoo each (about 540 mmpretrain configs). The cache
is a module-level one, not a session fixture: pytest registers an imported
fixture once per module that imports it, so a session fixture imported
into both files would still parse twice.
"""
from functools import lru_cache
from typing import Any, Dict

import pytest


@lru_cache(maxsize=None)
def parsed_zoo(package: str) -> Dict[str, Any]:
    """Every config of an installed toolkit's zoo, parsed (the tests must
    not change them).

    Args:
        package (str): the toolkit (skips the test if it is absent).

    Returns:
        dict: path -> Config, or the exception parsing raised, as
        :func:`isda_mm.twin.parse_zoo` gives them.
    """
    pytest.importorskip(package)
    from isda_mm.twin import parse_zoo
    return parse_zoo(package)

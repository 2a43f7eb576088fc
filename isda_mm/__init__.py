"""ISDA for OpenMMLab. ``import isda_mm`` makes mmengine checkpoints load
safely on torch >= 2.6 (see :mod:`isda_mm.engine.safe_load`)."""
from .version import __version__

try:
    import mmengine  # noqa: F401
except ImportError:  # the torch-only core still works
    pass
else:
    from .engine import register_safe_globals
    register_safe_globals()

__all__ = ['__version__']

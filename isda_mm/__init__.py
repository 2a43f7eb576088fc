"""ISDA for OpenMMLab.

``import isda_mm`` registers the ISDA heads of every installed toolkit (and
quietly skips absent ones), and makes mmengine checkpoints load safely on
torch >= 2.6 (see :mod:`isda_mm.engine.safe_load`).
"""
from importlib.util import find_spec

from .version import __version__

if find_spec('mmengine') is not None:  # without it, only the core works
    from .engine import register_safe_globals
    register_safe_globals()
    if find_spec('mmpretrain') is not None:
        from . import classification  # noqa: F401
    if find_spec('mmseg') is not None:
        from . import segmentation  # noqa: F401
    if find_spec('mmdet') is not None:
        from . import detection  # noqa: F401

__all__ = ['__version__']

"""Let ``torch.load(weights_only=True)`` read mmengine checkpoints.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7
calls ``torch.load`` without the argument, so ``--resume`` fails on the
``HistoryBuffer`` objects of the checkpoint's ``message_hub``. Two fixes keep
the safe loader's meaning:

* allow exactly the classes and functions such checkpoints hold
  (``HistoryBuffer`` and numpy's array reconstruction), never a
  general-purpose callable;
* stop ``HistoryBuffer`` from pickling its class-level table of statistics
  methods: protocol 2 writes those functions as ``builtins.getattr`` calls,
  and allowing ``getattr`` would let any checkpoint call anything. The table
  is rebuilt on load by ``HistoryBuffer.__setstate__``, as before.

Checkpoints written by mmengine without this (before ``import isda_mm``)
still hold ``getattr`` and are refused; load them once with
``weights_only=False`` if, and only if, you trust them.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _history_buffer_state(self) -> dict:
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def _numpy_globals() -> list:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:
        from numpy.core.multiarray import _reconstruct, scalar
    # Arrays and scalars of plain (non-object) dtypes only.
    dtypes = [type(np.dtype(t)) for t in np.typecodes['All'] if t != 'O']
    return [_reconstruct, scalar, np.ndarray, np.dtype] + dtypes


def register_safe_globals() -> None:
    """Allow mmengine's checkpoint contents in torch's safe unpickler."""
    HistoryBuffer.__getstate__ = _history_buffer_state
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals([HistoryBuffer] +
                                             _numpy_globals())

"""Building without cost: quiet toolkits, weights on the meta device.

:func:`meta_weights` lets ``isda-config`` (and the zoo tests) build any
head or whole model of the zoos, billion-parameter ones included, without
allocating or initialising a weight.
"""
import contextlib
import logging
import warnings
from functools import lru_cache


@contextlib.contextmanager
def quiet():
    """Keep the toolkits' warnings and INFO logs out of the report."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        logger.setLevel(level)


@lru_cache(maxsize=None)
def _meta_mode_class() -> type:
    """A TorchFunctionMode that puts new weights on the meta device."""
    import torch
    from torch.overrides import TorchFunctionMode

    # The factories that allocate weights; linspace, arange and tensor stay
    # on the CPU, as modules read drop-path rates back with .item().
    factories = {
        torch.empty, torch.empty_strided, torch.zeros, torch.ones,
        torch.full, torch.rand, torch.randn, torch.randint
    }
    if hasattr(torch, 'empty_permuted'):
        factories.add(torch.empty_permuted)
    # Filling a meta tensor does nothing but costs time.
    inits = {getattr(torch.nn.init, f) for f in dir(torch.nn.init)
             if f.endswith('_') and not f.startswith('_')} | {
                 torch.Tensor.normal_, torch.Tensor.uniform_,
                 torch.Tensor.fill_, torch.Tensor.zero_,
                 torch.Tensor.erfinv_, torch.Tensor.clamp_}

    class MetaWeights(TorchFunctionMode):
        """``torch.device('meta')`` for weight factories only."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in inits:
                tensor = args[0] if args else kwargs.get('tensor')
                if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                    return tensor
            if func in factories and kwargs.get('device') is None:
                kwargs = dict(kwargs, device='meta')
            return func(*args, **kwargs)

    return MetaWeights


def meta_weights():
    """Context in which modules are built with their weights on the meta
    device (no memory, no initialisation).

    Returns:
        TorchFunctionMode: enter it with ``with``.
    """
    return _meta_mode_class()()


@contextlib.contextmanager
def one_thread():
    """Small helper tensors only: one torch thread is the fastest."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

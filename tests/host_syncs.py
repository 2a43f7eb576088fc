"""Count the operations that would make a GPU wait for the host.

On a CPU nothing waits, so the count is of what *would* stall a CUDA
stream: reading a value on the host (``item``, ``bool``, ``tolist``), ops
whose output size depends on the data (``nonzero``, ``unique``, boolean-mask
indexing, ``masked_select``, ``bincount``, ``repeat_interleave`` without
``output_size``), and tensors made from host data (``torch.tensor``), which
are copied to the device.
"""
import contextlib
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
DATA_DEPENDENT = {
    aten._local_scalar_dense.default, aten.nonzero.default,
    aten._unique2.default, aten.unique_dim.default,
    aten.unique_consecutive.default, aten.masked_select.default,
    aten.bincount.default, aten.repeat_interleave.Tensor,
    aten.lift_fresh.default
}
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default,
            aten._index_put_impl_.default}


def _has_mask(indices) -> bool:
    return any(
        torch.is_tensor(i) and i.dtype in (torch.bool, torch.uint8)
        for i in indices)


class HostSyncs(TorchDispatchMode):
    """Counts, by op name, what would synchronise with a GPU."""

    def __init__(self):
        super().__init__()
        self.counts = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in DATA_DEPENDENT or (func in INDEXING
                                      and _has_mask(args[1])):
            self.counts[str(func.overloadpacket.__name__)] += 1
        return func(*args, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@contextlib.contextmanager
def count_host_syncs():
    """``with count_host_syncs() as syncs:`` ... ``syncs.total``.

    ``Tensor.tolist`` reads CPU memory without dispatching an op, so it is
    counted by wrapping the method.
    """
    mode = HostSyncs()
    tolist = torch.Tensor.tolist

    def counted_tolist(self):
        mode.counts['tolist'] += 1
        return tolist(self)

    torch.Tensor.tolist = counted_tolist
    try:
        with mode:
            yield mode
    finally:
        torch.Tensor.tolist = tolist


def training_step_syncs(loss_fn) -> tuple:
    """Host syncs of ``loss_fn()`` (a dict of losses) and the backward of
    its total, and the losses."""
    with count_host_syncs() as syncs:
        losses = loss_fn()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
    return syncs.total, losses

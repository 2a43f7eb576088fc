"""Which classes a batch holds, found once per step with one host sync.

The statistics update and the augmented logits both work per class present
in the batch (K of C). :func:`index_classes` finds them together with the
label and finiteness checks, and brings everything the host must know to it
in a single device-to-host copy: on a GPU, every ``.item()``, ``unique`` or
boolean-mask index would stall the pipeline once more.
"""
from typing import List, NamedTuple, Optional

import torch
from torch import Tensor


class ClassIndex(NamedTuple):
    """The classes of one batch of labels ``(B, P)``.

    ``classes`` (K,) and ``counts`` (K,) live on the labels' device,
    ``host_classes`` and ``host_counts`` are the same as Python lists.
    ``rows`` (the labels' shape) gives each sample's position in
    ``classes``, or K for ignored samples. ``finite`` is False when a
    counted sample's features are not finite: the statistics must then
    skip the batch; ``skipped_finite`` is False when an ignored one's are
    (they must then be kept out of sums explicitly, as ``0 * NaN`` is
    NaN). ``weights`` (the labels' shape) is None when every sample counts
    once, else each sample's weight towards its class (soft targets);
    ``sums`` (K,) and ``host_sums`` are then the classes' weight sums, and
    otherwise the counts again.
    """
    classes: Tensor
    counts: Tensor
    rows: Tensor
    host_classes: List[int]
    host_counts: List[int]
    finite: bool
    host_seen: Optional[List[float]] = None
    skipped_finite: bool = True
    weights: Optional[Tensor] = None
    sums: Optional[Tensor] = None
    host_sums: Optional[List[float]] = None

    @property
    def num_present(self) -> int:
        return len(self.host_classes)


def index_classes(labels: Tensor,
                  num_classes: int,
                  ignore_index: Optional[int],
                  name: str,
                  features: Optional[Tensor] = None,
                  seen: Optional[Tensor] = None,
                  weights: Optional[Tensor] = None) -> ClassIndex:
    """Index the classes of ``labels`` and check them, with one host sync.

    Args:
        labels (Tensor): ``(B, P)`` integer labels.
        num_classes (int): C; labels must be in ``[0, C)`` or ignored.
        ignore_index (int, optional): Label of samples to skip.
        name (str): Who is asking, for error messages.
        features (Tensor, optional): ``(B, A, P)`` features of the same
            samples, checked in the same sync: ``finite`` is False when a
            feature of a counted sample is NaN or Inf (or so large that
            its sum overflows, as its square would in the statistics).
        seen (Tensor, optional): ``(C,)`` running weight sums of the
            statistics, brought to the host in the same copy (``host_seen``:
            those of the classes present), for updates that need their
            merge weights as Python numbers.
        weights (Tensor, optional): Positive weight of each sample towards
            its class, shaped as ``labels``. Defaults to None: one each.

    Returns:
        ClassIndex: The classes present, in increasing order.

    Raises:
        ValueError: A label outside ``[0, C)`` that is not ignored.
    """
    in_range = (labels >= 0) & (labels < num_classes)
    bad = ~in_range
    counted = in_range
    if ignore_index is not None:
        bad = bad & (labels != ignore_index)
        counted = in_range & (labels != ignore_index)
    # Out-of-range labels go to slot C too, so nothing below indexes with
    # them before the check has run.
    slot = torch.where(counted, labels, num_classes).flatten()
    totals = torch.zeros(num_classes + 1, dtype=torch.int64,
                         device=labels.device)
    totals.index_add_(0, slot, torch.ones_like(slot))
    flags = [totals[:num_classes], bad.sum()[None]]
    if features is not None:
        # A sum is finite only if every summand is: one pass over them.
        wide = torch.promote_types(features.dtype, torch.float32)
        bad_rows = ~torch.isfinite(features.sum(1, dtype=wide))
        flags += [(bad_rows & counted).any()[None],
                  (bad_rows & ~counted).any()[None]]
    if weights is not None:
        sums = totals.new_zeros(num_classes + 1, dtype=torch.float64)
        sums.index_add_(0, slot, weights.flatten().double())
        flags.append(sums[:num_classes])
    if seen is not None:
        flags.append(seen)
    # float64 holds every count exactly (below 2^53)
    host = torch.cat([f.double() for f in flags]).tolist()  # the one sync
    if host[num_classes]:
        raise ValueError(
            f'{name}: label {labels[bad][0].item()} is outside '
            f'[0, {num_classes}) and is not ignore_index={ignore_index}; '
            'check num_classes and ignore_index')
    host_classes = [c for c, n in enumerate(host[:num_classes]) if n]
    host_counts = [int(host[c]) for c in host_classes]
    # seen, then the weight sums, are the last C numbers of the copy
    host_seen = None if seen is None else [host[c - num_classes]
                                           for c in host_classes]
    k = len(host_classes)
    present = totals[:num_classes] > 0
    # Position of every class among those present, K for slot C: no sync,
    # unlike nonzero or unique.
    position = torch.where(present, torch.cumsum(present, 0) - 1, k)
    position = torch.cat([position, position.new_full((1, ), k)])
    classes = torch.nonzero_static(present, size=k).flatten()
    counts, host_sums = totals[classes], host_counts
    if weights is not None:
        at = len(host) - num_classes * (1 + (seen is not None))
        host_sums = [host[at + c] for c in host_classes]
    return ClassIndex(classes, counts, position[slot].view(labels.shape),
                      host_classes, host_counts,
                      features is None or not host[num_classes + 1],
                      host_seen,
                      features is None or not host[num_classes + 2],
                      weights,
                      counts if weights is None else sums[classes],
                      host_sums)


def samples_last(tensor: Tensor) -> Tensor:
    """View ``(N, ch)`` as ``(1, ch, N)`` and ``(B, ch, d1, ...)`` as
    ``(B, ch, P)``: one layout for per-sample and per-pixel inputs, without
    the copy that moving the channels last would make."""
    return tensor.T[None] if tensor.dim() == 2 else tensor.flatten(2)

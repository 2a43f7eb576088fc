"""Which classes a batch holds, found once per step with one host sync.

The statistics update and the augmented logits both work per class present
in the batch (K of C). :func:`index_classes` (integer labels) and
:func:`index_class_weights` (soft class weights) find them together with
the input checks, and bring everything the host must know to it in a
single device-to-host copy: on a GPU, every ``.item()``, ``unique``,
``nonzero`` or boolean-mask index would stall the pipeline once more.
"""
from typing import List, NamedTuple, Optional, Tuple

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
        labels (Tensor): ``(B, P)`` integer labels (any integer dtype).
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
    labels = labels.long()  # index_add_ and indexing take int64 only
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
    sums = None
    if weights is not None:
        sums = totals.new_zeros(num_classes + 1, dtype=torch.float64)
        sums.index_add_(0, slot, weights.flatten().double())
        sums = sums[:num_classes]
    totals = totals[:num_classes]
    host = _to_host(totals, bad.sum(), features, counted, sums, seen)
    if host.bad:
        raise ValueError(
            f'{name}: label {labels[bad][0].item()} is outside '
            f'[0, {num_classes}) and is not ignore_index={ignore_index}; '
            'check num_classes and ignore_index')
    classes, position = _present(totals, len(host.classes))
    return host.index(totals, classes, position[slot].view(labels.shape),
                      weights, sums)


def index_class_weights(class_weights: Tensor,
                        ignore_index: Optional[int],
                        name: str,
                        features: Optional[Tensor] = None,
                        seen: Optional[Tensor] = None
                        ) -> Tuple[ClassIndex, Tensor]:
    """Index ``(N, C)`` class weights as one sample per (sample, class)
    pair of positive weight, checked, with one host sync.

    Args:
        class_weights (Tensor): ``(N, C)`` non-negative weights.
        ignore_index (int, optional): A class whose weights are skipped, as
            its label would be.
        name (str): Who is asking, for error messages.
        features (Tensor, optional): ``(1, A, N)`` features of the N
            samples, checked as by :func:`index_classes`.
        seen (Tensor, optional): As for :func:`index_classes`.

    Returns:
        tuple[ClassIndex, Tensor]: The index of the M pairs (``rows`` and
        ``weights`` are ``(1, M)``), and the sample of each pair ``(M,)``,
        in increasing order.

    Raises:
        ValueError: A weight that is negative, NaN or infinite.
    """
    num_classes = class_weights.shape[1]
    positive = class_weights > 0
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        positive[:, ignore_index] = False
    valid = torch.isfinite(class_weights) & (class_weights >= 0)
    sums = torch.where(positive, class_weights, 0).double().sum(0)
    totals = positive.sum(0)
    host = _to_host(totals, (~valid).sum(), features, positive.any(1), sums,
                    seen)
    if host.bad:
        raise ValueError(f'{name}: class weights must be finite and '
                         'non-negative')
    pairs = first_true(positive.flatten(), sum(host.counts))
    sample, label = pairs // num_classes, pairs % num_classes
    classes, position = _present(totals, len(host.classes))
    weights = class_weights.flatten()[pairs][None]
    index = host.index(totals, classes, position[label][None], weights, sums)
    return index, sample


class _Host(NamedTuple):
    """What the one device-to-host copy told, for the classes present."""
    classes: List[int]
    counts: List[int]
    bad: bool
    finite: bool
    skipped_finite: bool
    sums: Optional[List[float]]
    seen: Optional[List[float]]

    def index(self, totals: Tensor, classes: Tensor, rows: Tensor,
              weights: Optional[Tensor],
              sums: Optional[Tensor]) -> ClassIndex:
        """The :class:`ClassIndex` of ``rows``, from the ``(C,)`` totals
        and weight sums on the device."""
        counts = totals[classes]
        return ClassIndex(classes, counts, rows, self.classes, self.counts,
                          self.finite, self.seen, self.skipped_finite,
                          weights, counts if sums is None else sums[classes],
                          self.counts if self.sums is None else self.sums)


def _to_host(totals: Tensor, bad: Tensor, features: Optional[Tensor],
             counted: Tensor, sums: Optional[Tensor],
             seen: Optional[Tensor]) -> _Host:
    """The one sync: counts (C,), the number of bad inputs, the finiteness
    of counted and of skipped samples' features, weight sums (C,) and
    ``seen`` (C,) of the classes present."""
    flags = [totals, bad[None]]
    if features is not None:
        # A sum is finite only if every summand is: one pass over them.
        wide = torch.promote_types(features.dtype, torch.float32)
        bad_rows = ~torch.isfinite(features.sum(1, dtype=wide)).view(
            counted.shape)
        flags += [(bad_rows & counted).any()[None],
                  (bad_rows & ~counted).any()[None]]
    for extra in (sums, seen):
        if extra is not None:
            flags.append(extra)
    # float64 holds every count exactly (below 2^53)
    host = torch.cat([f.double() for f in flags]).tolist()  # the one sync
    num_classes = len(totals)
    present = [c for c, n in enumerate(host[:num_classes]) if n]
    at = num_classes + 1
    finite = skipped_finite = True
    if features is not None:
        finite, skipped_finite = not host[at], not host[at + 1]
        at += 2
    picked = []
    for extra in (sums, seen):
        picked.append(None if extra is None else
                      [host[at + c] for c in present])
        at += 0 if extra is None else num_classes
    return _Host(present, [int(host[c]) for c in present], bool(host[
        num_classes]), finite, skipped_finite, *picked)


def _present(totals: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The ``(K,)`` classes with a nonzero total, and the position of every
    class among them, K for absent classes and for slot C."""
    present = totals > 0
    position = torch.where(present, torch.cumsum(present, 0) - 1, k)
    position = torch.cat([position, position.new_full((1, ), k)])
    return first_true(present, k), position


def first_true(mask: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` True entries of a 1-D mask, increasing: what
    ``nonzero`` gives, without its sync, as ``k`` is known. A stable sort
    of the mask puts them first; unlike ``nonzero_static``, it runs on
    every device of every torch this package supports."""
    return torch.argsort(~mask, stable=True)[:k]


def samples_last(tensor: Tensor) -> Tensor:
    """View ``(N, ch)`` as ``(1, ch, N)`` and ``(B, ch, d1, ...)`` as
    ``(B, ch, P)``: one layout for per-sample and per-pixel inputs, without
    the copy that moving the channels last would make."""
    return tensor.T[None] if tensor.dim() == 2 else tensor.flatten(2)

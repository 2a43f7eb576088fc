"""Argument checks shared by the CIFAR backbones."""
from typing import Sequence, Tuple


def parse_out_indices(owner: str, out_indices: Sequence[int],
                      num_stages: int) -> Tuple[int, ...]:
    """Validate stage indices and make negative ones positive.

    Args:
        owner (str): The backbone's name, for error messages.
        out_indices (Sequence[int]): Indices of the stages to output;
            negative ones count from the end, as in Python.
        num_stages (int): Number of stages of the backbone.

    Returns:
        tuple[int]: The indices, each in ``[0, num_stages)``, in the order
        given.

    Raises:
        ValueError: If ``out_indices`` is empty or an index is out of range.
    """
    if isinstance(out_indices, int):
        out_indices = (out_indices, )
    out_indices = tuple(out_indices)
    if not out_indices:
        raise ValueError(f'{owner}: out_indices is empty; give at least one '
                         f'stage index in [0, {num_stages})')
    parsed = []
    for index in out_indices:
        if not -num_stages <= index < num_stages:
            raise ValueError(
                f'{owner}: out_indices={out_indices} holds {index}, but the '
                f'backbone has {num_stages} stages; use indices in '
                f'[{-num_stages}, {num_stages})')
        parsed.append(index % num_stages)
    return tuple(parsed)

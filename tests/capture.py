"""What a layer really receives, recorded by a forward pre-hook.

Adapter tests hand the float64 reference the features they capture here,
at the final linear layer itself, rather than what the adapter says it
augmented: a bug that feeds the statistics or the bound other features
than the classifier's input then shows.
"""
import contextlib
from typing import Iterator, List

import torch
from torch import nn


@contextlib.contextmanager
def layer_inputs(layer: nn.Module) -> Iterator[List[torch.Tensor]]:
    """``with layer_inputs(head.fc) as seen:`` ... ``seen[i]`` is a detached
    copy of the input of the layer's i-th call in the block."""
    seen = []
    handle = layer.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().clone()))
    try:
        yield seen
    finally:
        handle.remove()

"""One mechanism that makes ``ISDA<Head>`` out of any stock head.

Each toolkit adapter writes a small mixin that knows where its heads keep
the final linear layer and their labels; :func:`register_isda_heads` then
builds ``type('ISDA' + Head.__name__, (Mixin, Head), {})`` for every stock
head and registers it beside the stock one (DESIGN.md §5).
"""
import sys
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from mmengine.registry import Registry
from torch import Tensor

from ..core import ISDALoss
from .schedule import PROGRESS_UNITS, isda_lambda


class ISDAHeadMixin:
    """ISDA state and schedule shared by the heads of every toolkit.

    A toolkit mixin calls :meth:`init_isda` at the end of its ``__init__``
    and :meth:`isda_augment` in its ``loss``; predictions never change.
    """

    def init_isda(self,
                  num_classes: int,
                  feature_dim: int,
                  lambda0: float,
                  covariance: str,
                  lambda_by: str = 'iter',
                  ignore_index: Optional[int] = None,
                  sync_ranks: bool = True,
                  packed_covariance: bool = False) -> None:
        """Build the estimator and check the ISDA settings.

        Args:
            num_classes (int): Rows of the final linear layer.
            feature_dim (int): Its input width.
            lambda0 (float): lambda reached at the end of training.
            covariance (str): ``'full'`` or ``'diagonal'``.
            lambda_by (str): Progress unit of the linear schedule,
                ``'iter'`` or ``'epoch'``. Defaults to ``'iter'``.
            ignore_index (int, optional): Label to skip. Defaults to None.
            sync_ranks (bool): Identical statistics on every DDP rank
                (True) or per-rank statistics (False). Defaults to True.
            packed_covariance (bool): Store full covariances as triangles,
                half the memory. Defaults to False.
        """
        name = type(self).__name__
        if not isinstance(lambda0, (int, float)) or lambda0 < 0:
            raise ValueError(f'{name}: lambda0 must be a non-negative '
                             f'number, got {lambda0!r}')
        if lambda_by not in PROGRESS_UNITS:
            raise ValueError(f'{name}: lambda_by must be one of '
                             f'{PROGRESS_UNITS}, got {lambda_by!r}')
        self.lambda0 = float(lambda0)
        self.lambda_by = lambda_by
        self.isda = ISDALoss(num_classes, feature_dim, covariance,
                             ignore_index, sync_ranks, packed_covariance)

    def isda_augment(self, features: Tensor, logits: Tensor, labels: Tensor,
                     weight: Tensor) -> Tensor:
        """Update the statistics, then return the augmented logits for the
        current lambda (:func:`isda_mm.engine.isda_lambda`)."""
        self._isda_ratio = isda_lambda(self.lambda0, self.lambda_by)
        return self.isda.augment(features, logits, labels, weight,
                                 self._isda_ratio)

    def isda_augment_soft(self, features: Tensor, logits: Tensor,
                          targets: Tensor, weight: Tensor,
                          mixture: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """:meth:`isda_augment` for soft targets: the augmented logits and
        the bound's extra term (:meth:`isda_mm.core.ISDALoss.augment_soft`).
        """
        self._isda_ratio = isda_lambda(self.lambda0, self.lambda_by)
        return self.isda.augment_soft(features, logits, targets, weight,
                                      self._isda_ratio, mixture)

    def isda_log_vars(self) -> Dict[str, Tensor]:
        """``isda_lambda`` and the statistics' summary, for the loss dict
        (mmengine logs entries whose name has no ``loss`` without adding
        them to the total)."""
        stats = self.isda.estimator.summary()
        # full() fills on the device; torch.tensor() would copy from the
        # host, which waits for the GPU.
        return dict(
            isda_lambda=torch.full((), self._isda_ratio,
                                   device=stats['mean_trace'].device),
            isda_classes=stats['classes_seen'].float(),
            isda_cov_trace=stats['mean_trace'])


def register_isda_heads(mixin: type, heads: Iterable[type],
                        registry: Registry) -> List[type]:
    """Create and register ``ISDA<Head>`` for each stock head, and
    ``ISDALoss`` for heads that users write themselves.

    The classes are also set as attributes of the mixin's module, so they
    pickle and show up in ``dir()`` like written-out classes.
    """
    if 'ISDALoss' not in registry.module_dict:
        registry.register_module(name='ISDALoss', module=ISDALoss)
    module = sys.modules[mixin.__module__]
    made = []
    for head in heads:
        name = 'ISDA' + head.__name__
        cls = type(name, (mixin, head), {
            '__module__': mixin.__module__,
            '__doc__': f'``{head.__name__}`` trained with ISDA: takes every '
                       f'argument of ``{head.__name__}``, plus those of '
                       f'``{mixin.__name__}``.',
        })
        registry.register_module(name=name, module=cls)
        setattr(module, name, cls)
        made.append(cls)
    return made


def register_refusals(registry: Registry, reasons: Mapping[str, str]) -> None:
    """Register ``ISDA<Head>`` for heads ISDA cannot bound, as entries that
    raise a ``ValueError`` saying why (one sentence each, ``reasons``)
    when the model is built, rather than "not in the registry" or an
    approximation."""
    for name, reason in reasons.items():
        registry.register_module(name=f'ISDA{name}',
                                 module=_refusal(name, reason))


def _refusal(name: str, reason: str):

    def build(*args, **kwargs):
        raise ValueError(f'ISDA{name}: {reason}')

    build.__name__ = build.__qualname__ = f'ISDA{name}'
    return build

"""The consistency cost, bounded under ISDA's feature translation.

Consistency regularisation (the Pi-model and temporal ensembling, Laine &
Aila, ICLR 2017; Mean Teacher, Tarvainen & Valpola, NeurIPS 2017; VAT,
Miyato et al., T-PAMI 2018) pulls the student's prediction towards a target
``p`` that gets no gradient. With the KL divergence as the distance, and
the student's feature translated by ``N(0, lambda S)`` as ISDA does (Wang et
al., T-PAMI 2021, Sec. 5 and Table 6)::

    E[KL(p || softmax(z~))] = E[CE(z~, p)] - H(p)
                            <= logsumexp(z + (lambda / 2) q) - p^T z - H(p),

the soft-target bound of DESIGN.md Sec. 7 minus the target's entropy, which
carries no gradient (DESIGN.md Sec. 8). With ``lambda = 0`` it is the KL
divergence itself, computed by the same arithmetic, so each method + ISDA
at ``lambda0 = 0`` is the plain method. :func:`mse_consistency` is the
papers' mean squared error, for baselines (it has no ISDA bound).
"""
import math
from typing import Optional, Union

import torch
from torch import Tensor

from ...core import CovarianceEstimator, isda_augment_soft

COVARIANCE_CHOICES = ('argmax', 'mixture')


def sigmoid_rampup(step: Optional[int], length: int) -> float:
    """Mean Teacher's ramp-up ``exp(-5 (1 - t / T)^2)`` for ``t < T``, then 1.

    Args:
        step (int, optional): Iterations done, ``t``. None (outside a
            runner) counts as the end of the ramp-up.
        length (int): ``T``; 0 means no ramp-up.

    Returns:
        float: The factor, in ``(0, 1]``.
    """
    if step is None or step >= length:
        return 1.0
    phase = 1.0 - max(step, 0) / length
    return math.exp(-5.0 * phase * phase)


def entropy(probs: Tensor) -> Tensor:
    """Per-row entropy ``-sum_j p_j log p_j`` of ``(N, C)`` probabilities,
    with ``0 log 0 = 0``."""
    return -torch.special.xlogy(probs, probs).sum(1)


def mse_consistency(logits: Tensor, probs: Tensor) -> Tensor:
    """Per-sample mean over the C classes of ``(softmax(z) - p)^2``: the
    consistency cost of the Pi-model and temporal ensembling (Laine & Aila
    2017, Sec. 2) and of Mean Teacher's code.

    Args:
        logits (Tensor): ``(N, C)`` student logits.
        probs (Tensor): ``(N, C)`` target probabilities (no gradient flows
            to them).

    Returns:
        Tensor: ``(N,)`` float32 (or wider) costs.
    """
    dtype = torch.promote_types(logits.dtype, torch.float32)
    diff = logits.to(dtype).softmax(1) - probs.detach().to(dtype)
    return diff.square().mean(1)


def isda_consistency(logits: Tensor,
                     teacher_probs: Tensor,
                     weight: Optional[Tensor] = None,
                     covariance: Union[Tensor, CovarianceEstimator,
                                       None] = None,
                     ratio: float = 0.0,
                     translation: str = 'argmax') -> Tensor:
    """Per-sample ISDA upper bound of ``KL(p_T || softmax(z~))``.

    Args:
        logits (Tensor): ``(N, C)`` student logits ``z = W a + b``.
        teacher_probs (Tensor): ``(N, C)`` teacher probabilities ``p_T``
            (no gradient flows to them).
        weight (Tensor, optional): ``(C, A)`` the student's classifier
            weight W. Needed when ``ratio > 0``.
        covariance (Tensor | CovarianceEstimator, optional): The class
            covariances of the labeled data. Needed when ``ratio > 0``.
        ratio (float): lambda; 0 gives the plain KL divergence.
            Defaults to 0.
        translation (str): The covariance of the translation:
            ``'argmax'`` (that of the teacher's most probable class) or
            ``'mixture'`` (``sum_j p_T,j S_j``). Defaults to ``'argmax'``.

    Returns:
        Tensor: ``(N,)`` float32 (or wider) bounds, differentiable w.r.t.
        ``logits`` and ``weight``.
    """
    if translation not in COVARIANCE_CHOICES:
        raise ValueError(f'isda_consistency: translation must be one of '
                         f'{COVARIANCE_CHOICES}, got {translation!r}')
    dtype = torch.promote_types(logits.dtype, torch.float32)
    probs = teacher_probs.detach().to(dtype)
    augmented, extra = logits.to(dtype), None
    if ratio > 0:
        mixture = probs.argmax(1) if translation == 'argmax' else probs
        augmented, extra = isda_augment_soft(logits, probs, weight,
                                             covariance, ratio, mixture)
    # soft cross-entropy of the augmented logits, as in DESIGN.md Sec. 7
    bound = torch.logsumexp(augmented, 1) - (probs * augmented).sum(1)
    if extra is not None:
        bound = bound + extra
    return bound - entropy(probs)

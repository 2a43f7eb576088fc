"""Mean Teacher's consistency cost, bounded under ISDA's feature translation.

Tarvainen & Valpola, "Mean teachers are better role models" (NeurIPS 2017),
Sec. 2: the student's prediction on one noisy view of an image is pulled
towards the teacher's prediction ``p_T`` on another. With the KL divergence
as the distance, and the student's feature translated by ``N(0, lambda S)``
as ISDA does (Wang et al., T-PAMI 2021, Sec. 5 and Table 6)::

    E[KL(p_T || softmax(z~))] = E[CE(z~, p_T)] - H(p_T)
                              <= logsumexp(z + (lambda / 2) q) - p_T^T z
                                 - H(p_T),

the soft-target bound of DESIGN.md Sec. 7 with ``p = p_T``, minus the
teacher's entropy, which carries no gradient (DESIGN.md Sec. 8). With
``lambda = 0`` it is the KL divergence itself, computed by the same
arithmetic, so Mean Teacher + ISDA at ``lambda0 = 0`` is plain Mean Teacher.
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

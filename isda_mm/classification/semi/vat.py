"""Virtual adversarial training with the ISDA consistency bound.

Miyato, Maeda, Koyama & Ishii, "Virtual Adversarial Training: A
Regularization Method for Supervised and Semi-Supervised Learning" (T-PAMI
2018), Sec. 3: the clean prediction ``p`` is the target, and the student is
scored at ``x + r_adv``, the perturbation of norm ``epsilon`` that changes
its prediction most, found by power iteration on the KL (Eq. 13-14). Here
that KL is trained through ISDA's bound (Wang et al., T-PAMI 2021, Sec. 5,
Table 6; DESIGN.md Sec. 8). Everything that follows the authors' code
(``vat_tf``: ``vat.py``) is said where it is done.
"""
import contextlib
from typing import Iterator, List, Optional

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from .base import ConsistencyTarget, SemiSupervisedClassifier


def normalize_per_sample(d: Tensor) -> Tensor:
    """``d / ||d||`` per sample (over all but the first dimension), as
    ``vat_tf``'s ``get_normalized_vector``: first divided by its largest
    magnitude, then by ``sqrt(1e-6 + sum d^2)``, so tiny gradients keep
    their direction in float32."""
    flat = d.flatten(1)
    flat = flat / (1e-12 + flat.abs().amax(1, keepdim=True))
    flat = flat / torch.sqrt(1e-6 + flat.square().sum(1, keepdim=True))
    return flat.view_as(d)


def direction_seed(seed: int, step: int, rank: int) -> int:
    """Seed of the random start direction of ``step`` on ``rank``: a
    resumed run draws the directions an uninterrupted one would."""
    return (seed * 1_000_003 + step * 1_009 + rank) % (2**63)


@contextlib.contextmanager
def frozen_norm_statistics(module: nn.Module) -> Iterator[None]:
    """Normalization layers normalize with the batch's statistics but do
    not update their running ones (``vat_tf``'s
    ``update_batch_stats=False``): ``track_running_stats`` is off inside.
    """
    norms = [m for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._NormBase)
             and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


class _RandomState:
    """The global generators' state (CPU and the device's), to replay a
    pass's dropout masks."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = (torch.cuda.get_rng_state(device)
                     if device.type == 'cuda' else None)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


@MODELS.register_module()
class ISDAVAT(SemiSupervisedClassifier):
    """VAT around an ``ImageClassifier``, with ISDA when its head is an
    ISDA head.

    Training batches hold one view of each image. The student's clean pass
    gives the supervised loss and the target ``p = softmax(z)`` (no
    gradient). From a random direction ``d``, ``power_iterations`` steps of
    ``d <- grad_d KL(p || softmax(f(x + xi d / ||d||)))`` give ``r_adv =
    epsilon d / ||d||`` per image, and the consistency scores the
    student's logits at ``x + r_adv`` (with ISDA, the bound on them with
    the classifier's weight and the labeled images' statistics; the
    perturbed passes' features never update the statistics). With
    ``entropy_weight > 0`` the entropy of the student's clean prediction
    on the unlabeled images is added (VAT + EntMin). With ``lambda0 = 0``,
    or a stock head, this is plain VAT.

    Note:
        The perturbed passes replay the clean pass's dropout masks (the
        global generators' state is saved before it and restored for each
        pass, then set back), as ``vat_tf`` gives every pass the same
        dropout seeds, so ``r_adv`` measures the input's effect only. They
        normalize with their batch's statistics without updating BN's
        running ones (``vat_tf``'s ``update_batch_stats=False``;
        ``track_running_stats`` is switched off for them). The start
        direction comes from a generator seeded by the run's seed, the
        iteration and the rank, so a resumed run is exact.

    Args:
        epsilon (float): The norm of ``r_adv`` in normalized input units
            (per data set and normalisation; the configs set it).
        xi (float): The finite-difference step of the power iteration.
            Defaults to 1e-6 (``vat_tf``).
        power_iterations (int): Power iterations; 0 scores a random
            perturbation. Defaults to 1 (the paper).
        entropy_weight (float): Weight of the entropy term (VAT + EntMin),
            summed over the unlabeled images and divided by the batch
            size. Defaults to 0 (off).
        *args, **kwargs: The arguments of
            :class:`~.base.SemiSupervisedClassifier` and of
            ``ImageClassifier``.
    """

    num_views = 1

    def __init__(self,
                 *args,
                 epsilon: Optional[float] = None,
                 xi: float = 1e-6,
                 power_iterations: int = 1,
                 entropy_weight: float = 0.0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._check(
            epsilon is not None and epsilon > 0, 'epsilon',
            f'epsilon={epsilon!r} must be a positive number, the norm of '
            'the adversarial perturbation in normalized input units (it '
            'depends on the data set and its normalisation)')
        self._check(xi > 0, 'xi', f'xi={xi!r} must be > 0')
        self._check(
            isinstance(power_iterations, int) and power_iterations >= 0,
            'power_iterations', f'power_iterations={power_iterations!r} '
            'must be a non-negative integer')
        self._check(entropy_weight >= 0, 'entropy_weight',
                    f'entropy_weight={entropy_weight!r} must be >= 0')
        self.epsilon = float(epsilon)
        self.xi = float(xi)
        self.power_iterations = power_iterations
        self.entropy_weight = float(entropy_weight)
        self._clean_state = None
        self._steps = 0  # outside a runner: the calls so far

    def student_pass(self, view: Tensor):
        """The clean pass, after saving the generators' state."""
        self._clean_state = _RandomState(view.device)
        return super().student_pass(view)

    def perturbed_logits(self, x: Tensor) -> Tensor:
        """The student's logits on ``x`` with the clean pass's dropout
        masks."""
        self._clean_state.restore()
        return super().student_pass(x)[1]

    def random_direction(self, view: Tensor) -> Tensor:
        """The power iteration's start ``d ~ N(0, I)``, shaped as
        ``view``, from the generator of :func:`direction_seed`."""
        step = MessageHub.get_current_instance().get_info('iter')
        if step is None:
            step, self._steps = self._steps, self._steps + 1
        generator = torch.Generator(view.device)
        generator.manual_seed(
            direction_seed(torch.initial_seed(), step, get_dist_info()[0]))
        return torch.randn(view.shape, generator=generator,
                           device=view.device, dtype=view.dtype)

    def adversarial_perturbation(self, view: Tensor, probs: Tensor) -> Tensor:
        """``r_adv`` (no gradient) for the student's ``view`` and its clean
        prediction ``probs``."""
        d = self.random_direction(view)
        for _ in range(self.power_iterations):
            d = (self.xi * normalize_per_sample(d)).requires_grad_()
            logits = self.perturbed_logits(view + d)
            # KL(p || q) up to p's entropy, which has no gradient: summed,
            # so that each image's gradient is its own
            cost = -(probs * logits.float().log_softmax(1)).sum()
            d, = torch.autograd.grad(cost, d)
        return self.epsilon * normalize_per_sample(d.detach())

    def consistency_target(self, views: List[Tensor], logits: Tensor,
                           labels: Tensor,
                           data_samples: List[DataSample]
                           ) -> ConsistencyTarget:
        """The clean prediction, and the student's logits at ``x +
        r_adv``."""
        view = views[0]
        probs = logits.detach().float().softmax(1)
        after = _RandomState(view.device)
        with frozen_norm_statistics(self):
            r_adv = self.adversarial_perturbation(view, probs)
            adversarial = self.perturbed_logits(view + r_adv)
        after.restore()
        self._clean_state = None
        log = {}
        if self.entropy_weight > 0:
            log_probs = logits.float().log_softmax(1)
            per_sample = -(log_probs.exp() * log_probs).sum(1)
            log['loss_entropy'] = self.entropy_weight * torch.where(
                labels < 0, per_sample, 0.0).sum() / len(per_sample)
        return ConsistencyTarget(probs, logits=adversarial, log=log)

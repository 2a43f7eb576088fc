"""Mean Teacher's optimizer schedule for its ConvNet experiments.

Tarvainen & Valpola 2017, Appendix B.1, and their TensorFlow code
(``mean_teacher/model.py``): Adam whose learning rate follows a sigmoid-
shaped ramp-up ``exp(-5 (1 - t / T_up)^2)`` over the first ``T_up``
iterations and a ramp-down ``exp(-12.5 (1 - (T - t) / T_down)^2)`` over the
last ``T_down``; ``beta1`` falls from 0.9 to 0.5 with the ramp-down and
``beta2`` steps from its ramp-up value to 0.999 when the ramp-up ends. The
schedule of the ISDA paper's semi-supervised runs (Wang et al., T-PAMI 2021,
Table 6) on top of Mean Teacher.
"""
import math
from typing import Optional, Sequence

from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmpretrain.registry import PARAM_SCHEDULERS

from .consistency import sigmoid_rampup


@PARAM_SCHEDULERS.register_module()
class MeanTeacherRampLR(_ParamScheduler):
    """Sigmoid ramp-up and ramp-down of the learning rate, by iteration,
    and (for Adam) Mean Teacher's schedule of ``betas``.

    At iteration ``t``: ``lr = base_lr * rampup(t) * rampdown(t)``; with
    ``betas1=(b, b_end)``, ``beta1 = rampdown(t) b + (1 - rampdown(t))
    b_end``; with ``betas2=(b_up, b)``, ``beta2 = b_up`` while ``t <
    rampup_iters``, then ``b``.

    Args:
        optimizer (Optimizer | OptimWrapper): The optimizer.
        rampup_iters (int): Length of the ramp-up. Defaults to 40000.
        rampdown_iters (int): Length of the ramp-down. Defaults to 25000.
        total_iters (int): Training length ``T``; the ramp-down ends there.
        betas1 (Sequence[float], optional): ``beta1`` before and at the end
            of the ramp-down, e.g. ``(0.9, 0.5)``. Defaults to None: not
            changed.
        betas2 (Sequence[float], optional): ``beta2`` during and after the
            ramp-up, e.g. ``(0.99, 0.999)``. Defaults to None: not changed.
        by_epoch (bool): Must be False (iteration-based); the config should
            say so, or mmengine ends the scheduler after the first "epoch".
            Defaults to False.
        begin, end, last_step, verbose: As in mmengine's schedulers.
    """

    def __init__(self,
                 optimizer,
                 total_iters: int,
                 rampup_iters: int = 40000,
                 rampdown_iters: int = 25000,
                 betas1: Optional[Sequence[float]] = None,
                 betas2: Optional[Sequence[float]] = None,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = False,
                 verbose: bool = False) -> None:
        if by_epoch:
            raise ValueError('MeanTeacherRampLR: the schedule is by '
                             'iteration; set param_scheduler.by_epoch=False')
        for name, value in (('rampup_iters', rampup_iters),
                            ('rampdown_iters', rampdown_iters),
                            ('total_iters', total_iters)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'MeanTeacherRampLR: {name}={value!r} must '
                                 'be a non-negative integer; set '
                                 f'param_scheduler.{name}')
        for name, value in (('betas1', betas1), ('betas2', betas2)):
            if value is not None and len(value) != 2:
                raise ValueError(f'MeanTeacherRampLR: {name}={value!r} must '
                                 f'be two numbers; set param_scheduler.{name}')
        self.total_iters = total_iters
        self.rampup_iters = rampup_iters
        self.rampdown_iters = rampdown_iters
        self.betas1 = None if betas1 is None else tuple(betas1)
        self.betas2 = None if betas2 is None else tuple(betas2)
        super().__init__(optimizer, 'lr', begin, end, last_step,
                         by_epoch=False, verbose=verbose)

    def rampdown(self, step: int) -> float:
        """The ramp-down factor at iteration ``step``."""
        if self.rampdown_iters == 0 or (step < self.total_iters -
                                        self.rampdown_iters):
            return 1.0
        phase = 1.0 - max(self.total_iters - step, 0) / self.rampdown_iters
        return math.exp(-12.5 * phase * phase)

    def _get_value(self) -> list:
        factor = sigmoid_rampup(self.last_step, self.rampup_iters) * \
            self.rampdown(self.last_step)
        return [base * factor for base in self.base_values]

    def step(self) -> None:
        """Set the learning rate, then the betas of every group."""
        super().step()
        down = self.rampdown(self.last_step)
        for group in self.optimizer.param_groups:
            if 'betas' not in group:
                continue
            beta1, beta2 = group['betas']
            if self.betas1 is not None:
                beta1 = down * self.betas1[0] + (1 - down) * self.betas1[1]
            if self.betas2 is not None:
                beta2 = self.betas2[self.last_step >= self.rampup_iters]
            group['betas'] = (beta1, beta2)

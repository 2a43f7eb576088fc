"""Mean Teacher with the ISDA consistency bound.

Tarvainen & Valpola, "Mean teachers are better role models: Weight-averaged
consistency targets improve semi-supervised deep learning results" (NeurIPS
2017): the target is the prediction of a teacher, the exponential moving
average of the student's weights, on another view of the image. Wang et
al. (T-PAMI 2021, Sec. 5, Table 6) add ISDA to it (DESIGN.md Sec. 8).
"""
from typing import List, Sequence

import torch
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from .base import ConsistencyTarget, SemiSupervisedClassifier

TEACHER_BUFFERS = ('own', 'copy', 'ema')


@MODELS.register_module()
class ISDAMeanTeacher(SemiSupervisedClassifier):
    """Mean Teacher around an ``ImageClassifier``, with ISDA when its head
    is an ISDA head (``ISDALinearClsHead``, ...).

    The student is the classifier itself (its state dict keys are the
    stock classifier's); the teacher, ``teacher.module``, is an exponential
    moving average of its weights. Training batches hold two views of each
    image (``MultiView``, ``num_views=2``): the student sees the first, the
    teacher the second, and its softmax is the target ``p``. With
    ``lambda0 = 0``, or a stock head, this is plain Mean Teacher.

    Choices (see the folder README for why):

    * The teacher runs in training mode under ``no_grad``, as in both
      reference implementations: batch statistics and dropout are its
      noise; its BN running statistics are its own, from those passes
      (``teacher_buffers='own'``), since the EMA averages parameters only.
    * The teacher moves in ``SemiSupervisedHook`` (add it to
      ``custom_hooks``), after each optimizer step that updated the
      weights: ``teacher <- (1 - m) teacher + m student`` with mmengine's
      momentum ``m = 1 - alpha``; ``alpha = ema_decay[0]`` for the first
      ``rampup_iters`` updates, then ``ema_decay[1]``. The same path serves
      one process and DDP; a training step inside a runner without the
      hook fails at once.

    Args:
        ema_decay (Sequence[float]): Mean Teacher's ``alpha`` during and
            after the ramp-up. Defaults to ``(0.99, 0.999)``.
        ema_warmup (bool): Use the true average of the weights seen while
            it weighs the latest more than ``1 - alpha`` does (the PyTorch
            reference's ``min(1 - 1 / (step + 1), alpha)``). Defaults to
            False, as the TensorFlow code of the ConvNet results.
        teacher_buffers (str): The teacher's BN statistics: ``'own'``
            (from its own forward passes), ``'copy'`` (the student's,
            mmengine's ``update_buffers=False``) or ``'ema'`` (averaged,
            ``update_buffers=True``). Defaults to ``'own'``.
        predict_with (str): ``'teacher'`` or ``'student'`` for ``predict``
            and ``tensor`` mode. Defaults to ``'teacher'``.
        *args, **kwargs: The arguments of
            :class:`~.base.SemiSupervisedClassifier` (``consistency_weight``,
            ``rampup_iters``, ...) and of ``ImageClassifier``.
    """

    num_views = 2
    has_teacher = True

    def __init__(self,
                 *args,
                 ema_decay: Sequence[float] = (0.99, 0.999),
                 ema_warmup: bool = False,
                 teacher_buffers: str = 'own',
                 predict_with: str = 'teacher',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._check(
            len(ema_decay) == 2 and all(0 <= a < 1 for a in ema_decay),
            'ema_decay', f'ema_decay={ema_decay!r} must be two numbers in '
            "[0, 1) (Mean Teacher's alpha, e.g. (0.99, 0.999))")
        for key, value, choices in (
                ('teacher_buffers', teacher_buffers, TEACHER_BUFFERS),
                ('predict_with', predict_with, ('teacher', 'student'))):
            self._check(value in choices, key,
                        f'{key}={value!r} must be one of {choices}')
        self.ema_decay = tuple(float(a) for a in ema_decay)
        self.ema_warmup = ema_warmup
        self.teacher_buffers = teacher_buffers
        self.predict_with = predict_with
        student = ImageClassifier(
            backbone=self.backbone, neck=self.neck, head=self.head,
            data_preprocessor=self.data_preprocessor)
        # the momentum is set before each update (:meth:`ema_momentum`)
        self.teacher = ExponentialMovingAverage(
            student, momentum=min(max(self.ema_momentum(0), 1e-6), 0.5))
        # The teacher never trains: its head needs no ISDA statistics, and
        # its state dict is the stock classifier's.
        for name in ('isda', 'isda_others'):
            if hasattr(self.teacher.module.head, name):
                delattr(self.teacher.module.head, name)
        self._teacher_from_student = False
        self._teacher_updates = None  # ema.steps on the host, once read

    # ----- the target ----------------------------------------------------
    def consistency_target(self, views: List[Tensor], logits: Tensor,
                           labels: Tensor,
                           data_samples: List[DataSample]
                           ) -> ConsistencyTarget:
        """The teacher's softmax on the second view."""
        with torch.no_grad():
            probs = self.teacher.module(views[1],
                                        mode='tensor').float().softmax(1)
        # full() fills on the device; new_tensor() would copy from the host
        momentum = torch.full((), self.ema_momentum(self.teacher_updates),
                              device=probs.device)
        return ConsistencyTarget(probs, log=dict(ema_momentum=momentum))

    # ----- the teacher -------------------------------------------------
    def init_weights(self) -> None:
        """Initialize the student, then start the teacher equal to it."""
        super().init_weights()
        self._copy_into_teacher(buffers=True)

    @property
    def teacher_updates(self) -> int:
        """The teacher's updates so far (``teacher.steps``), kept on the
        host: reading the buffer would wait for the GPU at every step, so it
        is read once, after a load."""
        if self._teacher_updates is None:
            self._teacher_updates = int(self.teacher.steps)
        return self._teacher_updates

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._teacher_updates = None  # teacher.steps may be replaced
        # A checkpoint without a teacher (a supervised classifier's, as
        # load_from): start the teacher from the loaded student, once the
        # children have loaded (mmengine loads them after this call).
        self._teacher_from_student = not any(
            k.startswith(prefix + 'teacher.') for k in state_dict)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _teacher_after_load(self) -> None:
        if self._teacher_from_student:
            self._copy_into_teacher(buffers=True)
            self._teacher_from_student = False

    def _student_state(self, buffers: bool) -> dict:
        named = self.named_buffers() if buffers else self.named_parameters()
        return {k: v for k, v in named if not k.startswith('teacher.')}

    def _copy_into_teacher(self, buffers: bool) -> None:
        with torch.no_grad():
            for kind in (False, True) if buffers else (False, ):
                source = self._student_state(kind)
                named = (self.teacher.module.named_buffers() if kind else
                         self.teacher.module.named_parameters())
                for name, value in named:
                    value.copy_(source[name])

    def ema_momentum(self, update: int) -> float:
        """mmengine's momentum (the student's weight) of update number
        ``update`` (0-based): ``1 - alpha``, or the true average's
        ``1 / (update + 2)`` while it is larger, with ``ema_warmup``."""
        decay = self.ema_decay[update >= self.rampup_iters]
        if self.ema_warmup:
            return max(1 - decay, 1 / (update + 2))
        return 1 - decay

    @torch.no_grad()
    def update_teacher(self) -> None:
        """Move the teacher towards the student's current weights
        (``SemiSupervisedHook`` calls it after each optimizer step)."""
        self._teacher_after_load()
        ema = self.teacher
        steps = self.teacher_updates
        momentum = self.ema_momentum(steps)
        ema.momentum = momentum
        source = self._student_state(buffers=False)
        for name, param in ema.module.named_parameters():
            if param.dtype.is_floating_point:
                ema.avg_func(param.data, source[name].data, steps)
        if self.teacher_buffers != 'own':
            source = self._student_state(buffers=True)
            for name, buf in ema.module.named_buffers():
                if (self.teacher_buffers == 'ema'
                        and buf.dtype.is_floating_point):
                    buf.lerp_(source[name], momentum)
                else:
                    buf.copy_(source[name])
        ema.steps += 1
        self._teacher_updates = steps + 1

    # ----- inference ---------------------------------------------------
    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        """As ``ImageClassifier``; ``tensor`` and ``predict`` use the
        network chosen by ``predict_with``."""
        self._teacher_after_load()
        if mode != 'loss' and self.predict_with == 'teacher':
            return self.teacher.module(inputs, data_samples, mode=mode)
        return super().forward(inputs, data_samples, mode)

    def predict(self, inputs, data_samples=None, **kwargs):
        """Predictions of the teacher (default) or the student."""
        self._teacher_after_load()
        if self.predict_with == 'teacher':
            return self.teacher.module.predict(inputs, data_samples,
                                               **kwargs)
        return super().predict(inputs, data_samples, **kwargs)

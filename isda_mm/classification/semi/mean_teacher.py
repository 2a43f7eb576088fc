"""Mean Teacher with the ISDA consistency bound: semi-supervised ISDA.

Tarvainen & Valpola, "Mean teachers are better role models: Weight-averaged
consistency targets improve semi-supervised deep learning results" (NeurIPS
2017): a student is trained on the labeled images' cross-entropy plus a
consistency cost between its prediction on one noisy view of every image
and the prediction of a teacher, the exponential moving average of the
student's weights, on another view. Wang et al., "Regularizing Deep
Networks with Semantic Data Augmentation" (T-PAMI 2021, Sec. 5, Table 6)
add ISDA to it: the supervised term is ISDA's bound, and the consistency
term ``KL(p_T || softmax(z~))`` is trained through its upper bound under the
same feature translation (:mod:`.consistency`; DESIGN.md Sec. 7, 8).
"""
from typing import Optional, Sequence

import torch
from mmengine.logging import MessageHub
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS

from ...engine import isda_lambda
from .consistency import COVARIANCE_CHOICES, sigmoid_rampup
from .losses import MeanTeacherLossMixin

TEACHER_BUFFERS = ('own', 'copy', 'ema')
NORMALIZERS = ('batch', 'labeled')


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ValueError(f'ISDAMeanTeacher: {message}; set model.{key}')


@MODELS.register_module()
class ISDAMeanTeacher(MeanTeacherLossMixin, ImageClassifier):
    """Mean Teacher around an ``ImageClassifier``, with ISDA when its head
    is an ISDA head (``ISDALinearClsHead``, ...).

    Takes the ``ImageClassifier`` arguments (``backbone``, ``neck``,
    ``head``, ...), so a supervised config becomes Mean Teacher by changing
    ``model.type`` and the training data. The student is the classifier
    itself (its state dict keys are the stock classifier's); the teacher,
    ``teacher.module``, is an exponential moving average of its weights.

    Training batches hold two views of each image (``MultiView``,
    ``num_views=2``): the student sees the first, the teacher the second.
    Labeled images (``gt_label >= 0``) get the head's own loss: ISDA's
    bound for an ISDA head, the statistics updated from them only. The
    consistency ``KL(p_T || softmax(z))``, through its ISDA bound at the
    head's current lambda, is averaged over the batch and weighted by
    ``w(t) = consistency_weight * exp(-5 (1 - t / rampup_iters)^2)``.
    With ``lambda0 = 0``, or a stock head, this is plain Mean Teacher.

    Choices (see the folder README for why):

    * The teacher runs in training mode under ``no_grad``, as in both
      reference implementations: batch statistics and dropout are its
      noise; its BN running statistics are its own, from those passes
      (``teacher_buffers='own'``), since the EMA averages parameters only.
    * The teacher is updated after every optimizer step, ``teacher <- (1 -
      m) teacher + m student`` with mmengine's momentum ``m = 1 - alpha``;
      ``alpha = ema_decay[0]`` for the first ``rampup_iters`` updates, then
      ``ema_decay[1]``. Under DDP, where mmengine's wrapper bypasses
      ``train_step``, the update is made at the next forward instead.
    * The consistency's translation covariance is that of the teacher's
      arg-max class (``'argmax'``): C times cheaper than the mixture with
      full covariances, and the same as the supervised term's when the
      teacher is sure.

    Args:
        consistency_weight (float): ``w_max``, the weight of the KL
            consistency after the ramp-up. Defaults to 1.
        rampup_iters (int): Ramp-up of the consistency weight and of the
            EMA decay, in iterations. Defaults to 40000 (the paper's).
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
        consistency_on_labeled (bool): Apply the consistency to the labeled
            images too. Defaults to True.
        consistency_covariance (str): ``'argmax'`` or ``'mixture'``
            (``sum_j p_T,j S_j``). Defaults to ``'argmax'``.
        pseudo_label_threshold (float, optional): Unlabeled images whose
            teacher probability reaches it update the class statistics with
            the teacher's arg-max label. Defaults to None (off): wrong
            pseudo-labels would pollute the class covariances.
        supervised_normalizer (str): ``'batch'`` divides the labeled
            images' summed loss by the batch size, as both reference
            implementations; ``'labeled'`` keeps the head's mean over them.
            Defaults to ``'batch'``.
        input_noise (float): Std of Gaussian noise added to each normalized
            view in training (the paper's 0.15). Defaults to 0.
        predict_with (str): ``'teacher'`` or ``'student'`` for ``predict``
            and ``tensor`` mode. Defaults to ``'teacher'``.
        *args, **kwargs: Every argument of ``ImageClassifier``.
    """

    def __init__(self,
                 *args,
                 consistency_weight: float = 1.0,
                 rampup_iters: int = 40000,
                 ema_decay: Sequence[float] = (0.99, 0.999),
                 ema_warmup: bool = False,
                 teacher_buffers: str = 'own',
                 consistency_on_labeled: bool = True,
                 consistency_covariance: str = 'argmax',
                 pseudo_label_threshold: Optional[float] = None,
                 supervised_normalizer: str = 'batch',
                 input_noise: float = 0.0,
                 predict_with: str = 'teacher',
                 data_preprocessor: Optional[dict] = None,
                 **kwargs) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor or {})
            if data_preprocessor.get('type', 'ClsDataPreprocessor') in (
                    'ClsDataPreprocessor', 'mmpretrain.ClsDataPreprocessor'):
                data_preprocessor['type'] = 'MultiViewClsDataPreprocessor'
        super().__init__(*args, data_preprocessor=data_preprocessor, **kwargs)
        _check(self.head is not None, 'head', 'a head is required')
        _check(consistency_weight >= 0, 'consistency_weight',
               f'consistency_weight={consistency_weight!r} must be >= 0')
        _check(isinstance(rampup_iters, int) and rampup_iters >= 0,
               'rampup_iters', f'rampup_iters={rampup_iters!r} must be a '
               'non-negative integer')
        _check(len(ema_decay) == 2 and all(0 <= a < 1 for a in ema_decay),
               'ema_decay', f'ema_decay={ema_decay!r} must be two numbers in '
               "[0, 1) (Mean Teacher's alpha, e.g. (0.99, 0.999))")
        for key, value, choices in (
                ('teacher_buffers', teacher_buffers, TEACHER_BUFFERS),
                ('consistency_covariance', consistency_covariance,
                 COVARIANCE_CHOICES),
                ('supervised_normalizer', supervised_normalizer, NORMALIZERS),
                ('predict_with', predict_with, ('teacher', 'student'))):
            _check(value in choices, key,
                   f'{key}={value!r} must be one of {choices}')
        _check(pseudo_label_threshold is None
               or 0 < pseudo_label_threshold <= 1, 'pseudo_label_threshold',
               f'pseudo_label_threshold={pseudo_label_threshold!r} must be '
               'None or in (0, 1]')
        _check(input_noise >= 0, 'input_noise',
               f'input_noise={input_noise!r} must be >= 0')
        self.consistency_weight = float(consistency_weight)
        self.rampup_iters = rampup_iters
        self.ema_decay = tuple(float(a) for a in ema_decay)
        self.ema_warmup = ema_warmup
        self.teacher_buffers = teacher_buffers
        self.consistency_on_labeled = consistency_on_labeled
        self.consistency_covariance = consistency_covariance
        self.pseudo_label_threshold = pseudo_label_threshold
        self.supervised_normalizer = supervised_normalizer
        self.input_noise = float(input_noise)
        self.predict_with = predict_with
        self._check_head()
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
        self._in_train_step = False
        self._teacher_from_student = False
        self._teacher_updates = None  # ema.steps on the host, once read

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
        """Move the teacher towards the student's current weights."""
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

    def _catch_up_teacher(self) -> None:
        """Under a wrapper that skips :meth:`train_step` (DDP), update the
        teacher before the forward of iteration ``t`` if it has seen fewer
        than ``t`` optimizer steps."""
        done = MessageHub.get_current_instance().get_info('iter')
        if done is not None and self.teacher_updates < done:
            self.update_teacher()

    def train_step(self, data, optim_wrapper) -> dict:
        """mmengine's training step, then the teacher's update."""
        self._in_train_step = True
        try:
            log_vars = super().train_step(data, optim_wrapper)
        finally:
            self._in_train_step = False
        self.update_teacher()
        return log_vars

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

    # ----- schedules ---------------------------------------------------
    def current_consistency_weight(self) -> float:
        """``w(t)`` at the runner's iteration (``w_max`` outside one)."""
        done = MessageHub.get_current_instance().get_info('iter')
        return self.consistency_weight * sigmoid_rampup(
            done, self.rampup_iters)

    def current_lambda(self) -> float:
        """The ISDA head's lambda now (0 for a stock head)."""
        if not self.uses_isda:
            return 0.0
        return isda_lambda(self.head.lambda0, self.head.lambda_by)

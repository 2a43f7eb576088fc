"""One semi-supervised classifier; each method only makes its target.

Under consistency regularisation a student's prediction ``softmax(z)`` on
every image is pulled towards a target ``p`` that gets no gradient, by
``KL(p || softmax(z))``; the labeled images also get the supervised loss.
Wang et al. (T-PAMI 2021, Sec. 5, Table 6) add ISDA to four such methods:
with the student's feature translated, the KL is trained through the
soft-target bound of DESIGN.md Sec. 7 minus ``H(p)`` (Sec. 8;
:func:`.consistency.isda_consistency`), and the labeled images get ISDA's
supervised bound. The methods differ only in ``p`` (and, for VAT, in the
input the student is scored at): :class:`SemiSupervisedClassifier` holds the
rest once (the bound, the ramp, the normalisation, pseudo-labels, the log)
and asks :meth:`~SemiSupervisedClassifier.consistency_target` for ``p``.
"""
from typing import List, NamedTuple, Optional

import torch
from mmengine.logging import MessageHub
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.structures import DataSample
from torch import Tensor

from ...core.index import first_true
from ...engine import isda_lambda
from ..heads import ISDAClsHeadMixin
from .consistency import (
    COVARIANCE_CHOICES,
    isda_consistency,
    mse_consistency,
    sigmoid_rampup,
)

CONSISTENCIES = ('kl', 'mse')
NORMALIZERS = ('batch', 'labeled')
HOOK_HINT = "add custom_hooks = [dict(type='SemiSupervisedHook')]"


class ConsistencyTarget(NamedTuple):
    """What a method gives the base for the consistency term.

    ``probs`` (N, C): the target ``p``, without gradient. ``logits`` (N,
    C): the student logits to score against it; None for those of the
    student's pass that gives the supervised loss. ``mask`` (N,) bool:
    the images that have a target this step; None for all. ``log``: further
    entries of the loss dict (names with ``loss`` are added to the total).
    """
    probs: Tensor
    logits: Optional[Tensor] = None
    mask: Optional[Tensor] = None
    log: Optional[dict] = None


class SemiSupervisedClassifier(ImageClassifier):
    """``ImageClassifier`` trained on labeled and unlabeled images: the
    base of ``ISDAPiModel``, ``ISDATemporalEnsembling``, ``ISDAMeanTeacher``
    and ``ISDAVAT``, with ISDA when its head is an ISDA head.

    Takes the ``ImageClassifier`` arguments (``backbone``, ``neck``,
    ``head``, ...), so a supervised config becomes semi-supervised by its
    ``model.type`` and training data; its state dict is the stock
    classifier's plus the method's state.

    A training step adds Gaussian noise (``input_noise``) to each view,
    runs the student once on the first view (backbone, neck, the head's
    ``pre_logits`` and classifier), scores the labeled images
    (``gt_label >= 0``) with the head's own loss on those logits (ISDA's
    bound for an ISDA head, whose statistics see labeled images only), and
    adds ``w(t)`` times the batch mean of the consistency: the ISDA bound
    of ``KL(p || softmax(z))`` at the head's current lambda (the KL itself
    for a stock head or ``lambda0 = 0``), ``w(t) = consistency_weight *
    exp(-5 (1 - t / rampup_iters)^2)``. Each image goes through the head
    once per step, so dropout and BN before the classifier see one batch.

    Args:
        consistency_weight (float): ``w_max``, the consistency's weight
            after the ramp-up. Defaults to 1.
        rampup_iters (int): Iterations of the weight's sigmoid ramp-up; 0
            for none. Defaults to 40000 (Mean Teacher's ConvNet runs).
        consistency (str): ``'kl'``, ``KL(p || softmax(z))``, ISDA-bounded
            with an ISDA head, or ``'mse'``, the mean over classes of
            ``(softmax(z) - p)^2`` (the Pi-model, temporal ensembling and
            Mean Teacher papers' cost), for baselines with a stock head
            only: ISDA's bound exists for the KL. Defaults to ``'kl'``.
        consistency_on_labeled (bool): Apply the consistency to the labeled
            images too. Defaults to True.
        consistency_covariance (str): The translation's covariance in the
            consistency bound: ``'argmax'`` (the target's most probable
            class) or ``'mixture'`` (``sum_j p_j S_j``). Defaults to
            ``'argmax'``: C times cheaper with full covariances.
        pseudo_label_threshold (float, optional): Unlabeled images whose
            target probability reaches it also update the class statistics
            with the target's arg-max label. Defaults to None (off): wrong
            pseudo-labels would pollute the class covariances.
        supervised_normalizer (str): ``'batch'`` divides the labeled
            images' summed loss by the batch size (the reference
            implementations); ``'labeled'`` keeps the head's mean over
            them. Defaults to ``'batch'``.
        input_noise (float): Std of the Gaussian noise added to each
            normalized view in training (the papers' 0.15). Defaults to 0.
        *args, **kwargs: Every argument of ``ImageClassifier``.

    Note:
        A subclass sets ``num_views`` (views per image its training batches
        hold) and implements :meth:`consistency_target`.
    """

    num_views = 1
    has_teacher = False

    def __init__(self,
                 *args,
                 consistency_weight: float = 1.0,
                 rampup_iters: int = 40000,
                 consistency: str = 'kl',
                 consistency_on_labeled: bool = True,
                 consistency_covariance: str = 'argmax',
                 pseudo_label_threshold: Optional[float] = None,
                 supervised_normalizer: str = 'batch',
                 input_noise: float = 0.0,
                 data_preprocessor: Optional[dict] = None,
                 **kwargs) -> None:
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor or {})
            if data_preprocessor.get('type', 'ClsDataPreprocessor') in (
                    'ClsDataPreprocessor', 'mmpretrain.ClsDataPreprocessor'):
                data_preprocessor['type'] = 'MultiViewClsDataPreprocessor'
        super().__init__(*args, data_preprocessor=data_preprocessor, **kwargs)
        self._check(self.head is not None, 'head', 'a head is required')
        self._check(consistency_weight >= 0, 'consistency_weight',
                    f'consistency_weight={consistency_weight!r} must be >= 0')
        self._check(
            isinstance(rampup_iters, int) and rampup_iters >= 0,
            'rampup_iters',
            f'rampup_iters={rampup_iters!r} must be a non-negative integer')
        for key, value, choices in (
                ('consistency', consistency, CONSISTENCIES),
                ('consistency_covariance', consistency_covariance,
                 COVARIANCE_CHOICES),
                ('supervised_normalizer', supervised_normalizer,
                 NORMALIZERS)):
            self._check(value in choices, key,
                        f'{key}={value!r} must be one of {choices}')
        self._check(
            pseudo_label_threshold is None
            or 0 < pseudo_label_threshold <= 1, 'pseudo_label_threshold',
            f'pseudo_label_threshold={pseudo_label_threshold!r} must be '
            'None or in (0, 1]')
        self._check(input_noise >= 0, 'input_noise',
                    f'input_noise={input_noise!r} must be >= 0')
        self._check(
            not (consistency == 'mse' and self.uses_isda), 'consistency',
            "consistency='mse' has no ISDA bound (it is derived for the KL "
            f'divergence); with {type(self.head).__name__} use '
            "consistency='kl', or a stock head for an MSE baseline")
        self.consistency_weight = float(consistency_weight)
        self.rampup_iters = rampup_iters
        self.consistency = consistency
        self.consistency_on_labeled = consistency_on_labeled
        self.consistency_covariance = consistency_covariance
        self.pseudo_label_threshold = pseudo_label_threshold
        self.supervised_normalizer = supervised_normalizer
        self.input_noise = float(input_noise)
        self._check_head()
        # Set by SemiSupervisedHook.before_train.
        self.semi_hook_attached = False

    def _check(self, ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ValueError(
                f'{type(self).__name__}: {message}; set model.{key}')

    @property
    def uses_isda(self) -> bool:
        """Whether the student's head is an ISDA head."""
        return isinstance(self.head, ISDAClsHeadMixin)

    def _check_head(self) -> None:
        if self.uses_isda and len(self.head.isda_others):
            name = type(self.head).__name__
            raise ValueError(
                f'{type(self).__name__}: {name} has '
                f'{1 + len(self.head.isda_others)} classifiers; the '
                'consistency bound needs the one linear classifier whose '
                'softmax is the prediction; use a head with one '
                '(model.head.type=ISDALinearClsHead)')

    # ----- what a method provides ---------------------------------------
    def consistency_target(self, views: List[Tensor], logits: Tensor,
                           labels: Tensor,
                           data_samples: List[DataSample]
                           ) -> ConsistencyTarget:
        """The method's target ``p`` for this step.

        Args:
            views (list[Tensor]): The ``num_views`` noisy views; the
                student's pass ran on the first.
            logits (Tensor): ``(N, C)`` the student's logits on it.
            labels (Tensor): ``(N,)`` labels, -1 for unlabeled images.
            data_samples (list[DataSample]): The batch's samples.

        Returns:
            ConsistencyTarget: ``p`` and what goes with it.
        """
        raise NotImplementedError

    # ----- the student ---------------------------------------------------
    def _classifier(self, feats):
        """``(features, logits, weight)`` of the student's classifier; the
        features and weight are None for a stock head."""
        if not self.uses_isda:
            return None, self.head(feats), None
        (features, logits, weight), = self.head._classifiers(
            self.head.pre_logits(feats))
        return features, logits, weight

    def student_pass(self, view: Tensor):
        """The student on ``view``: ``(features, logits, weight)`` of its
        classifier, as :meth:`_classifier`."""
        return self._classifier(self.extract_feat(view))

    def student_logits(self, view: Tensor) -> Tensor:
        """The student's logits on ``view`` (a further pass)."""
        return self.student_pass(view)[1]

    # ----- the step ------------------------------------------------------
    def _views(self, inputs) -> List[Tensor]:
        name, count = type(self).__name__, self.num_views
        if isinstance(inputs, Tensor):
            inputs = [inputs]
        if isinstance(inputs, (list, tuple)) and len(inputs) == count:
            return list(inputs)
        got = len(inputs) if isinstance(inputs, (list, tuple)) else 1
        if count == 1:
            raise ValueError(
                f'{name}: training batches must hold one view of each image, '
                f'got {got}; remove MultiView from '
                'train_dataloader.dataset.pipeline (LoadImage..., the '
                'augmentations, PackInputs)')
        raise ValueError(
            f'{name}: training batches must hold {count} views of each '
            f"image, got {got}; put dict(type='MultiView', "
            f'num_views={count}, transforms=[[...]]) before PackInputs in '
            'train_dataloader.dataset.pipeline')

    def _check_hook(self) -> None:
        if (self.has_teacher and not self.semi_hook_attached
                and MessageHub.get_current_instance().get_info('iter')
                is not None):
            raise RuntimeError(f'{type(self).__name__}: the teacher moves in '
                               f'SemiSupervisedHook; {HOOK_HINT}')

    def loss(self, inputs, data_samples: List[DataSample]) -> dict:
        """Supervised loss on the labeled images (``gt_label >= 0``) and
        the consistency on all, with log entries.

        Args:
            inputs (Tensor | list[Tensor]): ``(N, C, H, W)`` images, or a
                list of ``num_views`` such views.
            data_samples (list[DataSample]): ``gt_label`` -1 marks an
                unlabeled image.

        Returns:
            dict: ``loss_sup`` and ``loss_consistency`` (summed by mmengine)
            and, for the log, the unweighted ``consistency``, its weight,
            the number of labeled images, the head's entries
            (``isda_lambda``, ``isda_classes``, ``isda_cov_trace``,
            accuracy) and the method's.
        """
        self._check_hook()
        views = self._views(inputs)
        if self.training and self.input_noise > 0:
            views = [v + self.input_noise * torch.randn_like(v)
                     for v in views]
        features, logits, weight = self.student_pass(views[0])
        labels = torch.cat([s.gt_label for s in data_samples]).to(
            logits.device)
        labeled = labels >= 0
        # Which images are labeled, on the host: one sync for the step.
        host_labeled = [i for i, y in enumerate(labels.tolist()) if y >= 0]
        target = self.consistency_target(views, logits, labels, data_samples)
        losses = {}
        if self.pseudo_label_threshold is not None and self.uses_isda:
            losses.update(self._pseudo_labels(features, target,
                                              labeled))
        losses.update(self._supervised(features, logits, weight, labels,
                                       data_samples, host_labeled))
        scored = logits if target.logits is None else target.logits
        per_sample = self.consistency_cost(scored, target.probs, weight)
        mask = target.mask
        if not self.consistency_on_labeled:
            mask = ~labeled if mask is None else mask & ~labeled
        if mask is not None:
            per_sample = torch.where(mask, per_sample, 0.0)
        bound = per_sample.sum() / len(per_sample)
        ramped = self.current_consistency_weight()
        # full() fills on the device; new_tensor() would copy from the host
        return dict(
            losses,
            loss_consistency=bound * ramped,
            consistency=bound.detach(),
            consistency_weight=torch.full((), ramped, device=bound.device),
            num_labeled=labeled.sum().float(),
            **(target.log or {}))

    def consistency_cost(self, logits: Tensor, probs: Tensor,
                         weight: Optional[Tensor]) -> Tensor:
        """Per-sample consistency of ``logits`` with the target ``probs``:
        the ISDA bound of the KL at the head's lambda, or the MSE."""
        if self.consistency == 'mse':
            return mse_consistency(logits, probs)
        return isda_consistency(
            logits, probs, weight,
            self.head.isda.estimator if self.uses_isda else None,
            self.current_lambda(), self.consistency_covariance)

    def _supervised(self, features: Optional[Tensor], logits: Tensor,
                    weight: Optional[Tensor], labels: Tensor,
                    data_samples: List[DataSample],
                    host_labeled: List[int]) -> dict:
        """The head's loss on the rows of the labeled images
        (``host_labeled``) of the student's pass: unlabeled ones reach
        neither the loss nor the statistics."""
        count = len(host_labeled)
        index = first_true(labels >= 0, count)  # no sync: count is known
        if count == 0:
            out = dict(loss_sup=logits.sum() * 0)
            if self.uses_isda:
                # An empty update keeps the DDP ranks' collective
                # statistics updates in step.
                self.head.isda.estimator.update(features[:0].detach(),
                                                labels[:0])
                self.head._isda_ratio = self.current_lambda()
                out.update(self.head.isda_log_vars())
            return out
        samples = [data_samples[i] for i in host_labeled]
        if self.uses_isda:
            out = self.head.loss_by_classifiers(
                [(features[index], logits[index], weight)], samples)
        else:
            out = self.head._get_loss(logits[index], samples)
        loss = out.pop('loss')
        if self.supervised_normalizer == 'batch':
            loss = loss * (count / len(labels))
        out['loss_sup'] = loss
        return out

    def _pseudo_labels(self, features: Tensor, target: ConsistencyTarget,
                       labeled: Tensor) -> dict:
        """Add the unlabeled images whose target is sure to the class
        statistics, with its arg-max label (before the losses, as ISDA
        updates its statistics before scoring a batch); images without a
        target this step are left out."""
        confidence, pseudo = target.probs.max(1)
        take = ~labeled & (confidence >= self.pseudo_label_threshold)
        if target.mask is not None:
            take = take & target.mask
        index = torch.nonzero(take).squeeze(1)
        self.head.isda.estimator.update(features[index].detach(),
                                        pseudo[index])
        return dict(num_pseudo_labels=take.sum().float())

    # ----- schedules -----------------------------------------------------
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

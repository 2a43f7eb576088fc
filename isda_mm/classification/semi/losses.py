"""The training loss of :class:`ISDAMeanTeacher`: the head's supervised
loss on the labeled images plus the weighted consistency bound on all.

Tarvainen & Valpola 2017, Sec. 2 (Mean Teacher's cost), with ISDA's bounds
for both terms (Wang et al., T-PAMI 2021, Sec. 5, Table 6; DESIGN.md
Sec. 8).
"""
from typing import List

import torch
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample
from torch import Tensor

from ...core.index import first_true
from ..heads import ISDAClsHeadMixin
from .consistency import isda_consistency


class MeanTeacherLossMixin:
    """``loss`` of :class:`ISDAMeanTeacher` and the pieces it needs."""

    @property
    def uses_isda(self) -> bool:
        """Whether the student's head is an ISDA head."""
        return isinstance(self.head, ISDAClsHeadMixin)

    def _check_head(self) -> None:
        if self.uses_isda and len(self.head.isda_others):
            name = type(self.head).__name__
            raise ValueError(
                f'ISDAMeanTeacher: {name} has {1 + len(self.head.isda_others)}'
                ' classifiers; the consistency bound needs the one linear '
                'classifier whose softmax is the prediction; use a head with '
                'one (model.head.type=ISDALinearClsHead)')

    def _classifier(self, feats):
        """``(features, logits, weight)`` of the student's classifier; the
        features and weight are None for a stock head."""
        if not self.uses_isda:
            return None, self.head(feats), None
        (features, logits, weight), = self.head._classifiers(
            self.head.pre_logits(feats))
        return features, logits, weight

    def loss(self, inputs: List[Tensor],
             data_samples: List[DataSample]) -> dict:
        """Supervised loss on the labeled images (``gt_label >= 0``) and
        the consistency on all, with log entries.

        Args:
            inputs (list[Tensor]): Two ``(N, C, H, W)`` views of the batch:
                the student's, then the teacher's.
            data_samples (list[DataSample]): ``gt_label`` -1 marks an
                unlabeled image.

        Returns:
            dict: ``loss_sup`` and ``loss_consistency`` (summed by mmengine)
            and, for the log, the unweighted ``consistency`` bound, its
            weight, the EMA momentum of the coming update, the number of
            labeled images, and the head's entries (``isda_lambda``,
            ``isda_classes``, ``isda_cov_trace``, accuracy).
        """
        if not (isinstance(inputs, (list, tuple)) and len(inputs) == 2):
            raise ValueError(
                'ISDAMeanTeacher: training batches must hold two views of '
                "each image; put dict(type='MultiView', num_views=2, "
                'transforms=[[...]]) before PackInputs in '
                'train_dataloader.dataset.pipeline')
        if not self._in_train_step:
            self._catch_up_teacher()
        student_view, teacher_view = inputs
        if self.training and self.input_noise > 0:
            student_view = student_view + self.input_noise * torch.randn_like(
                student_view)
            teacher_view = teacher_view + self.input_noise * torch.randn_like(
                teacher_view)
        with torch.no_grad():
            teacher_probs = self.teacher.module(
                teacher_view, mode='tensor').float().softmax(1)
        feats = self.extract_feat(student_view)
        features, logits, weight = self._classifier(feats)
        labels = torch.cat([s.gt_label for s in data_samples]).to(
            logits.device)
        labeled = labels >= 0
        # Which images are labeled, on the host: one sync for the step.
        host_labeled = [i for i, y in enumerate(labels.tolist()) if y >= 0]
        losses = {}
        if self.pseudo_label_threshold is not None and self.uses_isda:
            losses.update(self._pseudo_labels(features, teacher_probs,
                                              labeled))
        losses.update(self._supervised(feats, features, logits, labels,
                                       data_samples, host_labeled))
        per_sample = isda_consistency(
            logits, teacher_probs, weight,
            self.head.isda.estimator if self.uses_isda else None,
            self.current_lambda(), self.consistency_covariance)
        if not self.consistency_on_labeled:
            per_sample = torch.where(labeled, 0.0, per_sample)
        bound = per_sample.sum() / len(per_sample)
        ramped = self.current_consistency_weight()
        done = self._progress()
        # full() fills on the device; new_tensor() would copy from the host
        return dict(
            losses,
            loss_consistency=bound * ramped,
            consistency=bound.detach(),
            consistency_weight=torch.full((), ramped, device=bound.device),
            ema_momentum=torch.full((), self.ema_momentum(done),
                                    device=bound.device),
            num_labeled=labeled.sum().float())

    def _progress(self) -> int:
        """Iterations done: the runner's, else the teacher's updates."""
        done = MessageHub.get_current_instance().get_info('iter')
        return self.teacher_updates if done is None else done

    def _supervised(self, feats, features, logits: Tensor, labels: Tensor,
                    data_samples: List[DataSample],
                    host_labeled: List[int]) -> dict:
        """The head's loss on the labeled images (``host_labeled``, their
        positions) only: unlabeled ones neither reach the loss nor the
        statistics."""
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
        if isinstance(feats, (tuple, list)):
            chosen = tuple(f[index] for f in feats)
        else:
            chosen = feats[index]
        out = self.head.loss(chosen, [data_samples[i] for i in host_labeled])
        loss = out.pop('loss')
        if self.supervised_normalizer == 'batch':
            loss = loss * (count / len(labels))
        out['loss_sup'] = loss
        return out

    def _pseudo_labels(self, features: Tensor, teacher_probs: Tensor,
                       labeled: Tensor) -> dict:
        """Add the unlabeled images the teacher is sure of to the class
        statistics, with its arg-max label (before the losses, as ISDA
        updates its statistics before scoring a batch)."""
        confidence, pseudo = teacher_probs.max(1)
        take = ~labeled & (confidence >= self.pseudo_label_threshold)
        index = torch.nonzero(take).squeeze(1)
        self.head.isda.estimator.update(features[index].detach(),
                                        pseudo[index])
        return dict(num_pseudo_labels=take.sum().float())

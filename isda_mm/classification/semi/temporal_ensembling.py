"""Temporal ensembling with the ISDA consistency bound.

Laine & Aila, "Temporal Ensembling for Semi-Supervised Learning" (ICLR
2017), Sec. 2.2: each training image keeps an exponential moving average of
the network's past predictions on it, ``Z <- alpha Z + (1 - alpha) z``, and
the bias-corrected ``Z / (1 - alpha^t)`` is its target. Here it is the
target ``p`` (no gradient) of the KL consistency, trained through ISDA's
bound (Wang et al., T-PAMI 2021, Sec. 5, Table 6; DESIGN.md Sec. 8).
"""
from typing import List

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ...core.estimator import distributed_world_size, gather_rows
from .base import ConsistencyTarget, SemiSupervisedClassifier


@MODELS.register_module()
class ISDATemporalEnsembling(SemiSupervisedClassifier):
    """Temporal ensembling around an ``ImageClassifier``, with ISDA when
    its head is an ISDA head.

    Training batches hold one view of each image. The image's index is
    its data sample's ``sample_idx`` (mmengine's ``BaseDataset`` sets it,
    ``PackInputs`` keeps it; the labeled and unlabeled copies of an image
    share it). Its target is ``Z_i / (1 - alpha^n_i)`` from its ``n_i``
    past predictions; an image not seen before has no consistency term in
    this step (``num_unseen`` in the log). After the target is read, the
    ensemble takes this step's detached softmax, once per image even if the
    image appears twice in the batch (the first occurrence's prediction).
    Under torch.distributed every rank gathers all ranks' (index,
    prediction) pairs in rank order and applies the same update, so every
    rank holds the ensemble one process would hold after the concatenated
    global batch. With ``lambda0 = 0``, or a stock head, this is plain
    temporal ensembling with the KL consistency (or the paper's MSE,
    ``consistency='mse'``).

    Note:
        The paper updates the ensemble once per epoch, with every image
        seen once; per image and step it is the same when each image is
        seen once per epoch, and stays defined under the semi-supervised
        sampler, which shows labeled images more often.

    Args:
        num_images (int): Images of the training set (the length of the
            underlying dataset): the rows of the ensemble.
        ensemble_momentum (float): ``alpha``. Defaults to 0.6 (the paper).
        *args, **kwargs: The arguments of
            :class:`~.base.SemiSupervisedClassifier` and of
            ``ImageClassifier``.
    """

    num_views = 1

    def __init__(self,
                 *args,
                 num_images: int,
                 ensemble_momentum: float = 0.6,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._check(
            isinstance(num_images, int) and num_images > 0, 'num_images',
            f'num_images={num_images!r} must be a positive integer (the '
            "training set's length)")
        self._check(0 <= ensemble_momentum < 1, 'ensemble_momentum',
                    f'ensemble_momentum={ensemble_momentum!r} must be in '
                    '[0, 1)')
        num_classes = getattr(self.head, 'num_classes', None)
        self._check(isinstance(num_classes, int) and num_classes > 0,
                    'head', 'the head must have num_classes')
        self.num_images = num_images
        self.ensemble_momentum = float(ensemble_momentum)
        self.register_buffer(
            'ensemble', torch.zeros(num_images, num_classes))
        self.register_buffer(
            'ensemble_updates', torch.zeros(num_images, dtype=torch.int64))

    def image_indices(self, data_samples: List[DataSample],
                      device: torch.device) -> Tensor:
        """``(N,)`` the images' ``sample_idx``, checked on the host (they
        are Python numbers) and copied to ``device``."""
        name = type(self).__name__
        indices = []
        for sample in data_samples:
            index = sample.get('sample_idx')
            if index is None:
                raise ValueError(
                    f"{name}: a data sample has no sample_idx (the image's "
                    "index, set by mmengine's BaseDataset.get_data_info); "
                    "keep 'sample_idx' in the meta_keys of PackInputs in "
                    'train_dataloader.dataset.pipeline')
            indices.append(int(index))
        bad = [i for i in indices if not 0 <= i < self.num_images]
        if bad:
            raise ValueError(
                f'{name}: image index {bad[0]} is outside the '
                f'ensemble of num_images={self.num_images}; set '
                "model.num_images to the training set's length")
        return torch.tensor(indices, dtype=torch.int64).to(
            device, non_blocking=True)

    def consistency_target(self, views: List[Tensor], logits: Tensor,
                           labels: Tensor,
                           data_samples: List[DataSample]
                           ) -> ConsistencyTarget:
        """Each image's bias-corrected ensemble of its past predictions;
        then the ensemble takes this step's."""
        index = self.image_indices(data_samples, logits.device)
        seen = self.ensemble_updates[index]
        known = seen > 0
        alpha = self.ensemble_momentum
        correction = 1 - torch.full_like(seen, alpha,
                                         dtype=torch.float32).pow(seen)
        probs = self.ensemble[index] / torch.where(known, correction,
                                                   1.0)[:, None]
        # An unseen image's row is masked out; it gets a valid target so
        # that the bound's arithmetic stays finite.
        probs = torch.where(known[:, None], probs, 1 / probs.shape[1])
        self.update_ensemble(index, logits.detach().float().softmax(1))
        return ConsistencyTarget(
            probs, mask=known, log=dict(num_unseen=(~known).sum().float()))

    @torch.no_grad()
    def update_ensemble(self, index: Tensor, probs: Tensor) -> None:
        """``Z_i <- alpha Z_i + (1 - alpha) p_i`` and ``n_i += 1`` once per
        image of the (global) batch, with its first occurrence's ``p_i``.

        Duplicates write identical values, found with a stable sort and a
        running maximum: deterministic, without atomics or host syncs.
        """
        if distributed_world_size() > 1:
            probs, index = gather_rows(probs, index)
        order = torch.argsort(index, stable=True)
        ordered = index[order]
        position = torch.arange(len(ordered), device=index.device)
        starts = torch.ones_like(ordered, dtype=torch.bool)
        starts[1:] = ordered[1:] != ordered[:-1]
        # each slot's group start in sorted order, and so its first
        # occurrence in the batch (the sort is stable)
        first = order[torch.where(starts, position, 0).cummax(0).values]
        alpha = self.ensemble_momentum
        updated = alpha * self.ensemble[ordered] + (1 - alpha) * probs[first]
        self.ensemble.index_put_((ordered, ), updated)
        self.ensemble_updates.index_put_(
            (ordered, ), self.ensemble_updates[ordered] + 1)

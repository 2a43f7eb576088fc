"""Semi-supervised data: a class-balanced labeled split and batches that
hold labeled and unlabeled images in a fixed ratio.

As in Mean Teacher's code (Tarvainen & Valpola 2017; the TensorFlow
``minibatching.training_batches``): a seeded, class-balanced subset keeps
its labels; every batch takes a fixed number of images from an endless
stream of reshuffled passes over the labeled subset, and fills the rest
from an endless stream of passes over *all* images with their labels
withheld. This is the data of the ISDA paper's semi-supervised experiments
(Wang et al., T-PAMI 2021, Table 6).
"""
import json
from itertools import islice
from typing import Iterator, List, Optional, Union

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmpretrain.registry import DATA_SAMPLERS, DATASETS

UNLABELED = -1  # the label an image gets where it is used as unlabeled


@DATASETS.register_module()
class SemiSupervisedDataset:
    """A dataset whose images are labeled only in a class-balanced subset.

    ``num_labels`` images, the same number per class, drawn with ``seed``,
    keep their labels; every other image is unlabeled: its ``gt_label`` is
    set to -1 *before* the pipeline runs, so its label never reaches the
    model. Index ``i`` gives image ``i`` (labeled if it is in the subset);
    index ``i + len(self)`` gives image ``i`` with its label withheld
    (:class:`SemiSupervisedBatchSampler` draws unlabeled images from all
    images that way).

    Args:
        dataset (dict | BaseDataset): The full, labeled dataset (mmpretrain
            ``BaseDataset``: ``CIFAR10``, ``CustomDataset``, ...) with its
            pipeline.
        num_labels (int): Labeled images in all, a multiple of the number
            of classes.
        seed (int): Seed of the draw. Defaults to 0.

    Note:
        ``split()`` says which images are labeled (indices, labels, file
        paths where the dataset has them); :class:`SemiSupervisedHook`
        writes it to the work directory for auditing.
    """

    def __init__(self,
                 dataset: Union[dict, object],
                 num_labels: int,
                 seed: int = 0) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        dataset.full_init()
        self.dataset = dataset
        self.seed = seed
        labels = np.asarray(dataset.get_gt_labels()).astype(np.int64)
        num_classes = len(dataset.metainfo.get('classes') or []) or int(
            labels.max()) + 1
        if (not isinstance(num_labels, int) or num_labels <= 0
                or num_labels % num_classes):
            raise ValueError(
                f'SemiSupervisedDataset: num_labels={num_labels!r} must be a '
                f'positive multiple of the {num_classes} classes (the '
                'split is class-balanced); set '
                'train_dataloader.dataset.num_labels')
        per_class = num_labels // num_classes
        rng = np.random.default_rng(seed)
        chosen = []
        for c in range(num_classes):
            members = np.flatnonzero(labels == c)
            if len(members) < per_class:
                raise ValueError(
                    f'SemiSupervisedDataset: class {c} has {len(members)} '
                    f'images, fewer than num_labels / classes = {per_class}; '
                    'lower train_dataloader.dataset.num_labels')
            chosen.append(rng.choice(members, per_class, replace=False))
        self.labeled_indices = np.sort(np.concatenate(chosen))
        self.is_labeled = np.zeros(len(labels), dtype=bool)
        self.is_labeled[self.labeled_indices] = True
        self.num_classes = num_classes
        self._labels = labels

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information."""
        return self.dataset.metainfo

    def __len__(self) -> int:
        return len(self.dataset)

    def get_gt_labels(self) -> np.ndarray:
        """Labels as the model sees them: -1 for unlabeled images."""
        return np.where(self.is_labeled, self._labels, UNLABELED)

    def __getitem__(self, index: int) -> dict:
        size = len(self.dataset)
        if not 0 <= index < 2 * size:
            raise IndexError(f'SemiSupervisedDataset: index {index} out of '
                             f'[0, {2 * size})')
        image = index % size
        info = self.dataset.get_data_info(image)
        if index >= size or not self.is_labeled[image]:
            info['gt_label'] = UNLABELED
        return self.dataset.pipeline(info)

    def split(self) -> dict:
        """The labeled split, for auditing (JSON-serializable)."""
        paths = [
            self.dataset.get_data_info(int(i)).get('img_path')
            for i in self.labeled_indices
        ]
        classes = self.metainfo.get('classes')
        return dict(
            num_images=len(self.dataset),
            num_labels=len(self.labeled_indices),
            seed=self.seed,
            classes=list(classes) if classes else None,
            labels_per_class=np.bincount(
                self._labels[self.labeled_indices],
                minlength=self.num_classes).tolist(),
            indices=self.labeled_indices.tolist(),
            labels=self._labels[self.labeled_indices].tolist(),
            paths=paths if any(p is not None for p in paths) else None)

    def dump_split(self, path: str) -> None:
        """Write :meth:`split` to ``path`` as JSON."""
        with open(path, 'w') as f:
            json.dump(self.split(), f, indent=1)


@DATA_SAMPLERS.register_module()
class SemiSupervisedBatchSampler:
    """Endless batches of ``num_labeled`` labeled and ``batch_size -
    num_labeled`` unlabeled images.

    Labeled slots come from consecutive seeded permutations of the labeled
    subset (so within each pass every labeled image appears exactly once);
    unlabeled slots from consecutive permutations of all images, labels
    withheld (index ``i + len(dataset)``). The stream never ends, which is
    what ``IterBasedTrainLoop`` wants (no dataloader restarts), and it
    depends on the seed only, so a resumed run that skips the batches it has
    done sees the same ones as an uninterrupted run. Under DDP each rank
    takes its slice of a global batch of ``world_size * batch_size``.

    Args:
        sampler (Sampler): The dataloader's sampler (mmengine builds it
            from ``train_dataloader.sampler``, which is required, e.g.
            ``dict(type='DefaultSampler', shuffle=True)``); its dataset (a
            :class:`SemiSupervisedDataset`), seed, rank and world size are
            used, its order is not.
        batch_size (int): Images per batch and rank.
        num_labeled (int): Labeled images per batch and rank, in
            ``[1, batch_size]``.
        seed (int, optional): Seed of the streams. Defaults to None: the
            sampler's seed.
    """

    def __init__(self,
                 sampler,
                 batch_size: int,
                 num_labeled: int,
                 seed: Optional[int] = None) -> None:
        dataset = getattr(sampler, 'dataset', None)
        if dataset is None:
            # mmengine builds the batch sampler with sampler=<the built
            # train_dataloader.sampler>; without one there is no dataset.
            raise ValueError(
                'SemiSupervisedBatchSampler: it reads the dataset, seed, rank '
                f"and world size from the dataloader's sampler, got "
                f'{sampler!r}; add train_dataloader.sampler=dict('
                "type='DefaultSampler', shuffle=True)")
        if not hasattr(dataset, 'labeled_indices'):
            raise TypeError(
                'SemiSupervisedBatchSampler: the dataset must be a '
                f'SemiSupervisedDataset, got {type(dataset).__name__}; wrap '
                'it: train_dataloader.dataset=dict(type='
                "'SemiSupervisedDataset', dataset=..., num_labels=...)")
        if not (isinstance(num_labeled, int)
                and 1 <= num_labeled <= batch_size):
            raise ValueError(
                f'SemiSupervisedBatchSampler: num_labeled={num_labeled!r} '
                f'must be an integer in [1, batch_size={batch_size}]; set '
                'train_dataloader.batch_sampler.num_labeled')
        self.sampler = sampler
        self.batch_size = batch_size
        self.num_labeled = num_labeled
        self.labeled = np.asarray(dataset.labeled_indices)
        self.num_images = len(dataset)
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        self.seed = sync_random_seed() if seed is None else seed
        rank, world_size = get_dist_info()
        self.rank = getattr(sampler, 'rank', rank)
        self.world_size = getattr(sampler, 'world_size', world_size)

    def _stream(self, indices: np.ndarray, stream: int) -> Iterator[int]:
        """Consecutive seeded permutations of ``indices``, endlessly."""
        npass = 0
        while True:
            rng = np.random.default_rng([self.seed, stream, npass])
            yield from rng.permutation(indices).tolist()
            npass += 1

    def __iter__(self) -> Iterator[List[int]]:
        labeled = self._stream(self.labeled, 0)
        unlabeled = self._stream(np.arange(self.num_images), 1)
        num_unlabeled = self.batch_size - self.num_labeled
        while True:
            batch = []
            for stream, count, offset in ((labeled, self.num_labeled, 0),
                                          (unlabeled, num_unlabeled,
                                           self.num_images)):
                chunk = list(islice(stream, count * self.world_size))
                mine = chunk[self.rank * count:(self.rank + 1) * count]
                batch += [i + offset for i in mine]
            yield batch

    def __len__(self) -> int:
        """Batches in one pass over the labeled subset (the stream itself
        never ends)."""
        return max(len(self.labeled) // (self.num_labeled * self.world_size),
                   1)

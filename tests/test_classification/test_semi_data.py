"""Semi-supervised data: the labeled split (class-balanced, seeded, labels of
unlabeled images withheld before the pipeline) and the batch sampler
(composition, no repeats within a pass, DDP slices, determinism)."""
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

import isda_mm  # noqa: F401
from isda_mm.classification.semi import (
    SemiSupervisedBatchSampler,
    SemiSupervisedDataset,
)

CLASSES, PER_CLASS = 3, 10


@DATASETS.register_module(force=True)
class TinySemiImages(BaseDataset):
    """``PER_CLASS`` 8x8 grayscale images per class, made in memory; two
    identical views each (no random transform: runs are deterministic)."""

    METAINFO = dict(classes=tuple('abc'[:CLASSES]))

    def __init__(self, per_class=PER_CLASS, pipeline=None, **kwargs):
        self.per_class = per_class
        pipeline = pipeline or [
            dict(type='MultiView', num_views=2, transforms=[[]]),
            dict(type='PackInputs'),
        ]
        super().__init__(ann_file='', pipeline=pipeline, **kwargs)

    def load_data_list(self):
        rng = np.random.default_rng(0)
        return [
            dict(img=rng.normal(60 + 60 * c, 30, (8, 8, 1)).clip(
                0, 255).astype(np.uint8), gt_label=c)
            for c in range(CLASSES) for _ in range(self.per_class)
        ]


def semi(num_labels=6, seed=0, **kwargs):
    return SemiSupervisedDataset(dict(type='TinySemiImages', **kwargs),
                                 num_labels=num_labels, seed=seed)


def test_split_is_class_balanced_and_seeded():
    dataset = semi(num_labels=6, seed=1)
    labels = [dataset.dataset.get_data_info(int(i))['gt_label']
              for i in dataset.labeled_indices]
    assert Counter(labels) == {0: 2, 1: 2, 2: 2}
    again = semi(num_labels=6, seed=1)
    other = semi(num_labels=6, seed=2)
    assert dataset.labeled_indices.tolist() == again.labeled_indices.tolist()
    assert dataset.labeled_indices.tolist() != other.labeled_indices.tolist()
    split = dataset.split()
    assert split['labels_per_class'] == [2, 2, 2]
    assert split['indices'] == dataset.labeled_indices.tolist()
    assert split['seed'] == 1 and split['num_images'] == 30


@pytest.mark.parametrize('num_labels, match', [(7, 'multiple of the 3'),
                                               (33, 'fewer than')])
def test_bad_num_labels(num_labels, match):
    with pytest.raises(ValueError, match=match):
        semi(num_labels=num_labels)


def test_unlabeled_labels_are_withheld_before_the_pipeline():
    dataset = semi()
    seen = []
    pipeline = dataset.dataset.pipeline
    dataset.dataset.pipeline = lambda info: (seen.append(info['gt_label']),
                                             pipeline(info))[1]
    size = len(dataset)
    labeled = int(dataset.labeled_indices[0])
    unlabeled = int(np.flatnonzero(~dataset.is_labeled)[0])
    true = dataset.dataset.get_data_info(labeled)['gt_label']
    assert dataset[labeled]['data_samples'].gt_label.tolist() == [true]
    # an unlabeled image, and a labeled one drawn as unlabeled
    for index in (unlabeled, unlabeled + size, labeled + size):
        item = dataset[index]
        assert item['data_samples'].gt_label.tolist() == [-1]
        assert len(item['inputs']) == 2  # two views
    assert seen == [true, -1, -1, -1]
    assert (dataset.get_gt_labels() >= 0).sum() == 6
    with pytest.raises(IndexError):
        dataset[2 * size]


def sampler_of(dataset, batch_size=5, num_labeled=2, rank=0, world_size=1,
               seed=3):
    inner = SimpleNamespace(dataset=dataset, seed=seed, rank=rank,
                            world_size=world_size)
    return SemiSupervisedBatchSampler(inner, batch_size, num_labeled)


def take(sampler, count):
    it = iter(sampler)
    return [next(it) for _ in range(count)]


def test_batches_have_the_configured_composition():
    dataset = semi()  # 6 labeled of 30
    size = len(dataset)
    batches = take(sampler_of(dataset), 12)  # 4 passes over the labeled
    labeled_set = set(dataset.labeled_indices.tolist())
    for b in batches:
        assert len(b) == 5
        assert all(i in labeled_set for i in b[:2])
        assert all(size <= i < 2 * size for i in b[2:])
    stream = [i for b in batches for i in b[:2]]
    for start in range(0, len(stream), 6):  # each pass: each image once
        assert sorted(stream[start:start + 6]) == sorted(labeled_set)
    unlabeled = [i - size for b in batches for i in b[2:]]
    assert sorted(unlabeled[:size]) == list(range(size))  # all images
    assert len(sampler_of(dataset)) == 3
    assert take(sampler_of(dataset), 12) == batches  # seeded
    assert take(sampler_of(dataset, seed=4), 12) != batches


def test_ranks_take_slices_of_one_global_batch():
    dataset = semi()
    whole = take(sampler_of(dataset, batch_size=10, num_labeled=4), 6)
    ranks = [take(sampler_of(dataset, rank=r, world_size=2), 6)
             for r in range(2)]
    for step, global_batch in enumerate(whole):
        mine = [ranks[r][step] for r in range(2)]
        assert mine[0][:2] + mine[1][:2] == global_batch[:4]
        assert mine[0][2:] + mine[1][2:] == global_batch[4:]


@pytest.mark.parametrize('num_labeled', [0, 6])
def test_bad_num_labeled(num_labeled):
    with pytest.raises(ValueError, match='batch_sampler.num_labeled'):
        sampler_of(semi(), num_labeled=num_labeled)


def test_sampler_needs_the_wrapper():
    with pytest.raises(TypeError, match='SemiSupervisedDataset'):
        sampler_of(DATASETS.build(dict(type='TinySemiImages')))


def test_sampler_is_required():
    """mmengine builds the batch sampler with the dataloader's sampler;
    without one there is nothing to read the dataset from."""
    with pytest.raises(ValueError, match=r'add train_dataloader\.sampler='):
        SemiSupervisedBatchSampler(None, batch_size=5, num_labeled=2)


@pytest.mark.parametrize('views', [1, 2])
def test_copies_of_an_image_share_its_index(views):
    """Temporal ensembling keys its ensemble by ``sample_idx``: the
    labeled and the unlabeled copy of an image carry the same one."""
    pipeline = [dict(type='PackInputs')]
    if views == 2:
        pipeline.insert(0, dict(type='MultiView', num_views=2,
                                transforms=[[]]))
    dataset = semi(pipeline=pipeline)
    size = len(dataset)
    labeled = int(dataset.labeled_indices[0])
    for index in (labeled, labeled + size):
        assert dataset[index]['data_samples'].sample_idx == labeled
    assert dataset[size + 7]['data_samples'].sample_idx == 7

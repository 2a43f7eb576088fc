"""Writes the labeled split of a semi-supervised run to its work directory.

Which images were labeled decides what a semi-supervised result means
(Tarvainen & Valpola 2017 average ten seeded splits; Wang et al., T-PAMI
2021, Table 6, report the same protocol), so every run records its own.
"""
import os.path as osp

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

SPLIT_FILE = 'labeled_split.json'


@HOOKS.register_module()
class SemiSupervisedSplitHook(Hook):
    """Before training, write the training set's labeled split as
    ``<work_dir>/labeled_split.json``.

    The split is :meth:`SemiSupervisedDataset.split`: the indices, labels
    and (for file datasets) paths of the labeled images, the seed and the
    number per class. Does nothing when the training set is not a
    ``SemiSupervisedDataset``.

    Args:
        filename (str): File name in the work directory.
            Defaults to ``'labeled_split.json'``.
    """

    priority = 'VERY_LOW'

    def __init__(self, filename: str = SPLIT_FILE) -> None:
        self.filename = filename

    @master_only
    def before_train(self, runner) -> None:
        """Write the split once the training dataloader exists."""
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, 'dump_split'):
            return
        path = osp.join(runner.work_dir, self.filename)
        dataset.dump_split(path)
        print_log(
            f'labeled split ({len(dataset.labeled_indices)} images, seed '
            f'{dataset.seed}) written to {path}',
            logger='current')

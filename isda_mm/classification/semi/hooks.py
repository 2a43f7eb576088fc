"""The runner's side of semi-supervised training: the teacher's updates and
the record of the labeled split.

Mean Teacher's teacher (Tarvainen & Valpola 2017, Sec. 2) follows the
student after every optimizer step. mmengine's DDP wrapper calls the
model's forward, not its ``train_step``, so the update lives in a hook,
which sees every step the same way in one process and in many, knows when
the optimizer really stepped (gradient accumulation), and runs before the
checkpoint and the validation of the same iteration. Which images were
labeled decides what a semi-supervised result means (Mean Teacher averages
ten seeded splits; Wang et al., T-PAMI 2021, Table 6, the same protocol),
so every run also records its split.
"""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmpretrain.registry import HOOKS

SPLIT_FILE = 'labeled_split.json'


def _wrappers(optim_wrapper) -> dict:
    if isinstance(optim_wrapper, OptimWrapperDict):
        return dict(optim_wrapper.items())
    return {'': optim_wrapper}


@HOOKS.register_module()
class SemiSupervisedHook(Hook):
    """Moves a semi-supervised model's teacher after each optimizer step
    and writes the labeled split as ``<work_dir>/labeled_split.json``.

    * ``before_train``: tells the model the hook is attached (a model with
      a teacher refuses to train in a runner without it), and writes the
      split of a ``SemiSupervisedDataset`` (:meth:`split`: indices, labels,
      file paths, the seed, the number per class) from the main process.
    * ``after_train_iter``: calls the model's ``update_teacher()`` if it
      has one and an optimizer updated the weights in this iteration: its
      ``update_params`` ran and ``should_update()`` held, so under
      ``accumulative_counts=k`` the teacher moves at every k-th iteration
      (and at the last). With several optimizers (``OptimWrapperDict``),
      when any of them stepped. It runs before ``CheckpointHook`` and the
      validation of the iteration, so neither sees a teacher one update
      behind.

    Args:
        filename (str): File name of the split in the work directory.
            Defaults to ``'labeled_split.json'``.

    Note:
        An ``AmpOptimWrapper`` step that its loss scaler skips (inf or NaN
        gradients) still counts as a step: telling would cost a host sync.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, filename: str = SPLIT_FILE) -> None:
        self.filename = filename
        self._counts = {}

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        """Tell the model; write the split once the dataloader exists."""
        model = self._model(runner)
        if hasattr(model, 'semi_hook_attached'):
            model.semi_hook_attached = True
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, 'dump_split') or not is_main_process():
            return
        path = osp.join(runner.work_dir, self.filename)
        dataset.dump_split(path)
        print_log(
            f'labeled split ({len(dataset.labeled_indices)} images, seed '
            f'{dataset.seed}) written to {path}',
            logger='current')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Remember how often each optimizer wrapper was used."""
        self._counts = {key: wrapper.inner_count for key, wrapper in
                        _wrappers(runner.optim_wrapper).items()}

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Move the teacher if an optimizer stepped in this iteration."""
        model = self._model(runner)
        if not hasattr(model, 'update_teacher'):
            return
        stepped = any(
            wrapper.inner_count > self._counts.get(key, 0)
            and wrapper.should_update()
            for key, wrapper in _wrappers(runner.optim_wrapper).items())
        if stepped:
            model.update_teacher()

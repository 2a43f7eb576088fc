"""Hooks for end-to-end tests, loaded by a test config through
``custom_imports``: the ISDA statistics of every rank, and the sampled RoIs'
labels that each ISDA bbox head saw."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpISDAStatistics(Hook):
    """Every rank saves its ISDA statistics to ``isda_rank{RANK}.pth``."""

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state = {
            name: module.state_dict()
            for name, module in model.named_modules()
            if type(module).__name__ == 'CovarianceEstimator'
        }
        torch.save(state, osp.join(runner.work_dir,
                                   f'isda_rank{get_rank()}.pth'))


@HOOKS.register_module()
class RecordRoILabels(Hook):
    """Saves the labels and label weights that each ISDA bbox head's
    ``loss`` is given to ``work_dir/roi_labels.pth``."""

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self.seen = {}
        for name, module in model.named_modules():
            if type(module).__name__.startswith('ISDA') and hasattr(
                    module, 'fc_cls'):
                self.seen[name] = []
                module.loss = self._recording(module.loss, self.seen[name])

    @staticmethod
    def _recording(loss, store):

        def recorded(cls_score, bbox_pred, rois, labels, label_weights,
                     *args, **kwargs):
            store.append((labels.clone(), label_weights.clone()))
            return loss(cls_score, bbox_pred, rois, labels, label_weights,
                        *args, **kwargs)

        return recorded

    def after_train(self, runner):
        torch.save(self.seen, osp.join(runner.work_dir, 'roi_labels.pth'))

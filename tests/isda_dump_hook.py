"""A hook for end-to-end tests: after training, every rank saves its ISDA
statistics to ``work_dir/isda_rank{RANK}.pth``, so a test can compare ranks.
Loaded by a test config through ``custom_imports``."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpISDAStatistics(Hook):

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

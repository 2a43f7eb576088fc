"""A classification data preprocessor for images with several views.

mmpretrain's ``MultiView`` transform gives each image a list of augmented
views; ``ClsDataPreprocessor`` handles one image per sample only and
mmpretrain's ``SelfSupDataPreprocessor`` drops the labels' batching. Mean
Teacher (Tarvainen & Valpola 2017, Sec. 2) needs both: one view for the
student, another for the teacher, and the labels.
"""
from typing import List

from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import MODELS


@MODELS.register_module()
class MultiViewClsDataPreprocessor(ClsDataPreprocessor):
    """``ClsDataPreprocessor`` that also takes samples of several views.

    When every sample's ``inputs`` is a list of views (``MultiView`` then
    ``PackInputs``), mmengine's ``pseudo_collate`` gives ``inputs`` as one
    sequence of N images per view; each view is normalized as
    ``ClsDataPreprocessor`` does and stacked, and ``inputs`` becomes a list
    of ``(N, C, H, W)`` tensors, one per view; labels are batched once.
    Single-view samples are handled exactly as by ``ClsDataPreprocessor``.
    Takes every argument of ``ClsDataPreprocessor``.

    Note:
        Batch augmentations (Mixup, CutMix) would mix each view with a
        different partner, so they are refused with several views.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        """Preprocess a batch of single- or multi-view samples.

        Args:
            data (dict): ``inputs`` and ``data_samples`` from the dataloader.
            training (bool): Whether batch augmentations may apply.

        Returns:
            dict: ``inputs`` (a tensor, or a list of tensors for several
            views) and ``data_samples``.
        """
        inputs = data['inputs']
        if not (isinstance(inputs, (list, tuple)) and inputs
                and isinstance(inputs[0], (list, tuple))):
            return super().forward(data, training)
        if self.batch_augments is not None:
            raise ValueError(
                'MultiViewClsDataPreprocessor: batch augmentations (Mixup, '
                'CutMix) would mix each view with a different partner; '
                'remove model.train_cfg.augments')
        views: List[list] = [list(view) for view in inputs]
        first = super().forward(
            dict(inputs=views[0], data_samples=data.get('data_samples')),
            training)
        rest = [
            super(MultiViewClsDataPreprocessor, self).forward(
                dict(inputs=view), training)['inputs'] for view in views[1:]
        ]
        return dict(inputs=[first['inputs'], *rest],
                    data_samples=first['data_samples'])

# Cascade R-CNN, R-50 FPN, multi-scale 3x schedule on COCO, from torchvision's
# ImageNet ResNet-50: the baseline of cascade-rcnn_r50-isda_fpn_ms-3x_coco.py.
# The mmdet 3.3 zoo has no such config; this one is composed as the zoo
# composes faster-rcnn_r50_fpn_ms-3x_coco.py, from its multi-scale 3x data and
# schedule (common/ms_3x_coco.py) and the zoo's Cascade R-CNN model.
_base_ = [
    'mmdet::common/ms_3x_coco.py',
    'mmdet::_base_/models/cascade-rcnn_r50_fpn.py',
]
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

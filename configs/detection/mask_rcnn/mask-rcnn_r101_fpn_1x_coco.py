# Mask R-CNN, R-101 FPN, 1x schedule (12 epochs) on COCO, exactly as the mmdet
# zoo trains it, from torchvision's ImageNet ResNet-101: the baseline of
# mask-rcnn_r101-isda_fpn_1x_coco.py.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

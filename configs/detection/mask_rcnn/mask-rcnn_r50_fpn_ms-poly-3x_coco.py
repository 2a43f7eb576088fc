# Mask R-CNN, R-50 FPN, multi-scale 3x schedule, polygon masks on COCO, exactly
# as the mmdet zoo trains it, from torchvision's ImageNet ResNet-50: the
# baseline of mask-rcnn_r50-isda_fpn_ms-poly-3x_coco.py.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_ms-poly-3x_coco.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

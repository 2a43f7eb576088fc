# Faster R-CNN, R-50 FPN, 1x schedule (12 epochs) on COCO, exactly as the mmdet
# zoo trains it, from torchvision's ImageNet ResNet-50: the baseline of
# faster-rcnn_r50-isda_fpn_1x_coco.py.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

# Cascade R-CNN, R-101 FPN, multi-scale 3x schedule on COCO, from torchvision's
# ImageNet ResNet-101: the baseline of
# cascade-rcnn_r101-isda_fpn_ms-3x_coco.py. The mmdet 3.3 zoo has no such
# config; this is cascade-rcnn_r50_fpn_ms-3x_coco.py with the depth and
# backbone the zoo's R-101 configs set.
_base_ = './cascade-rcnn_r50_fpn_ms-3x_coco.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))

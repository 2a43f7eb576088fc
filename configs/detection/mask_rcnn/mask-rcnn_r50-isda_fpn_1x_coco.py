# Mask R-CNN, R-50 FPN, 1x schedule (12 epochs) on COCO, from the ResNet-50
# pre-trained on ImageNet with ISDA: the paper's COCO protocol (the detector
# itself is trained as usual). Only the backbone's initial weights differ from
# mask-rcnn_r50_fpn_1x_coco.py; how to make the checkpoint is in README.md.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='checkpoints/'
            'resnet50_8xb64-isda-coslr-300e_in1k.pth')))

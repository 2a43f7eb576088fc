# Cascade Mask R-CNN, R-101 FPN, 1x schedule (12 epochs) on COCO, from the
# ResNet-101 pre-trained on ImageNet with ISDA: the paper's COCO protocol (the
# detector itself is trained as usual). Only the backbone's initial weights
# differ from cascade-mask-rcnn_r101_fpn_1x_coco.py; how to make the checkpoint
# is in README.md.
_base_ = './cascade-mask-rcnn_r101_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='checkpoints/'
            'resnet101_8xb64-isda-coslr-300e_in1k.pth')))

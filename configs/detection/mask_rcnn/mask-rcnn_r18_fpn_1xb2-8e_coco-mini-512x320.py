# Mask R-CNN, R-18 FPN trained from scratch on COCO-MINI: the CPU-budget
# comparison of ISDA in the RoI head (mask-rcnn_r18_fpn_1xb2-isda-8e_...).
# COCO-MINI: 80 train and 79 val COCO-2017 images with their original
# instance annotations ("Data" in the top-level README.md says where to get
# it), in data/coco_mini/annotations/instances_{train,val}2017.json and
# data/coco_mini/{train,val}2017/*.jpg.
# No ImageNet weights can be downloaded here, so the backbone starts from
# random weights and trains with its BN layers (the zoo freezes the stem and
# BN statistics of a pre-trained backbone); images at most 512x320; FPN and
# heads 64 channels wide (the zoo's 256 cost 16x more on a CPU).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

data_root = 'data/coco_mini/'
scale = (512, 320)
width = 64
model = dict(
    backbone=dict(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# 8 epochs of 40 iterations; lr 0.02 of 16 images scaled linearly to 2,
# a 100-iteration linear warm-up, x0.1 after epoch 6.
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[6], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=0.0025))
default_hooks = dict(logger=dict(interval=10))

# Fast-SCNN trained from scratch on CamVid (11 classes, void = 255): the
# CPU-budget comparison of configs/segmentation. The data: SegNet's CamVid
# (README.md in configs/segmentation says where to get it and how to lay it
# out) in data/camvid/img_dir/{train,val,test}/*.jpg and
# data/camvid/ann_dir/{train,val,test}/*.png (classes 0-10, void 255).
# Changes to the zoo's Cityscapes recipe: BN instead of SyncBN (one
# process), softmax cross-entropy instead of the zoo's sigmoid one (the
# ISDA bound is derived for softmax; the baseline uses the same loss),
# CamVid data, 160x160 crops, batch 8, lr scaled to it, 3k iterations (a
# budget that fits a CPU session: about 15 minutes on 2 cores).
_base_ = 'mmseg::fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

num_classes = 11
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
crop_size = (160, 160)
data_preprocessor = dict(size=crop_size)
loss = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
aux_head = dict(
    type='FCNHead',
    channels=32,
    num_convs=1,
    num_classes=num_classes,
    norm_cfg=norm_cfg,
    concat_input=False,
    align_corners=False,
    loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(
        num_classes=num_classes, norm_cfg=norm_cfg, loss_decode=loss),
    auxiliary_head=[
        dict(in_channels=128, in_index=-2, **aux_head),
        dict(in_channels=64, in_index=-3, **aux_head),
    ])

dataset_type = 'BaseSegDataset'
data_root = 'data/camvid'
metainfo = dict(
    classes=('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
             'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist'),
    palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128],
             [60, 40, 222], [128, 128, 0], [192, 128, 128], [64, 64, 128],
             [64, 0, 128], [64, 64, 0], [0, 128, 192]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(480, 360),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline,
        **dataset))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(
            img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline,
        **dataset))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(
            img_path='img_dir/test', seg_map_path='ann_dir/test'),
        pipeline=test_pipeline,
        **dataset))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# the zoo's 0.12 for 8x4 images, scaled linearly to 1x8
optim_wrapper = dict(optimizer=dict(lr=0.03))
train_cfg = dict(max_iters=3000, val_interval=1000)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=3000,
        by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=1000))

# DeiT-tiny with 4x4 patches on 32x32 CIFAR-10 (the JPEG copy): a CPU-budget
# smoke recipe for ISDA with soft targets, not a tuned or published one.
# It keeps what makes the DeiT recipe (mmpretrain::deit/deit-tiny_4xb256_
# in1k.py, inherited): Mixup (alpha 0.8) + CutMix (alpha 1.0) on the batch,
# label smoothing 0.1 (mode 'original'), AdamW with weight decay 0.05, no
# decay on norms, biases, cls token and position embedding, gradient
# clipping at 5. What changes is sized for 300 iterations on a 2-core CPU
# in about 10 minutes: 8x8 patches of 4x4 pixels (65 tokens), 1 x 32 images,
# lr 5e-4 (the DeiT base lr, not scaled down by batch, or 300 steps learn
# little) with 30 warm-up iterations and cosine decay to iteration 300, one
# evaluation on the test split at the end. On one free core of this
# project's 2-core CPU a training step took 1.4 s with 32 images (2.6 s with
# 64) and the test pass about 2.6 min: about 10 min for the run; with the
# CPU shared by other jobs it was 2-4x slower (timings in README.md).
#
# The data, as ../resnet_cifar/resnet32_1xb128-160e_cifar10-jpg.py: the
# CIFAR-10 JPEG copy ("Data" in the top-level README.md says where to get
# it) in data/cifar10/{train,test}/<class>/*.jpg with data/cifar10/meta/
# {train,test,classes}.txt, read by CustomDataset; random crop 32 with
# padding 4 and horizontal flip (DeiT's RandAugment and random erasing are
# left out).
_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(img_size=32, patch_size=4),
    head=dict(num_classes=10))

dataset_type = 'CustomDataset'
data_root = 'data/cifar10'
# official label order; read relative to the working directory, like
# data_root
classes = data_root + '/meta/classes.txt'

# the zoo's CIFAR-10 mean and std (RGB); the JPEGs decode to BGR
data_preprocessor = dict(
    num_classes=10,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

# meta/{train,test}.txt list '<class>/<file> <label>' under train/ and test/
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='train',
        classes=classes,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/test.txt',
        data_prefix='test',
        classes=classes,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# 300 iterations (0.19 epoch), evaluated once, at the end. For a shorter
# check, e.g. --cfg-options train_cfg.max_iters=20 train_cfg.val_interval=20
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, end=30),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=False,
        begin=30,
        end=300)
]
train_cfg = dict(
    _delete_=True, by_epoch=False, max_iters=300, val_interval=300)
auto_scale_lr = dict(base_batch_size=32)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=300))
log_processor = dict(by_epoch=False)

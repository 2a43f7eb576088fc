# ResNet-32 (He et al. 2016) on CIFAR-10: the baseline of the ISDA paper's
# CIFAR experiments. The zoo's CIFAR-10 data (random crop 32 with padding 4,
# horizontal flip), schedule and runtime, changed to the paper's recipe.
_base_ = [
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CIFARResNet', depth=32),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))

# 1 GPU x 128 images
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

# 160 epochs of SGD (Nesterov, momentum 0.9, weight decay 1e-4) from lr 0.1,
# divided by 10 at epochs 80 and 120
optim_wrapper = dict(optimizer=dict(nesterov=True))
param_scheduler = dict(milestones=[80, 120], gamma=0.1)
train_cfg = dict(max_epochs=160)

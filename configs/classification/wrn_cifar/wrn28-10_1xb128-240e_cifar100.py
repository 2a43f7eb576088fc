# Wide-ResNet-28-10 (Zagoruyko & Komodakis 2016) with dropout 0.3 on
# CIFAR-100: the baseline of the ISDA paper's CIFAR experiments. The zoo's
# CIFAR-100 data (random crop 32 with padding 4, horizontal flip), schedule
# and runtime, changed to the paper's recipe.
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='WideResNet', depth=28, widen_factor=10, drop_rate=0.3),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=640,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))

# 1 GPU x 128 images
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

# 240 epochs of SGD (Nesterov, momentum 0.9, weight decay 5e-4) from lr 0.1,
# multiplied by 0.2 at epochs 60, 120, 160 and 200
optim_wrapper = dict(optimizer=dict(weight_decay=5e-4, nesterov=True))
param_scheduler = dict(milestones=[60, 120, 160, 200], gamma=0.2)
train_cfg = dict(max_epochs=240)

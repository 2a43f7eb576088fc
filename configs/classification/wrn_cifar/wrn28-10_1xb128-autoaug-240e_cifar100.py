# Wide-ResNet-28-10 on CIFAR-100 with AutoAugment: a baseline of the ISDA
# paper's Table 4. Its Table 2 recipe with the paper's code's pipeline:
# reflection padding 4, random crop 32, horizontal flip, then AutoAugment's
# CIFAR-10 policy, then Cutout.
_base_ = [
    './wrn28-10_1xb128-240e_cifar100.py',
    '../../_base_/datasets/pipelines/cifar_augment.py',
]

train_pipeline = _base_.autoaugment_train_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# Shake-Shake (26, 2x112d) on CIFAR-100 with AutoAugment: a baseline of the
# ISDA paper's Table 4. Its Table 2 recipe with the paper's code's pipeline:
# reflection padding 4, random crop 32, horizontal flip, then AutoAugment's
# CIFAR-10 policy, then Cutout.
_base_ = [
    './shake-shake26-2x112d_1xb64-coslr-1800e_cifar100.py',
    '../../_base_/datasets/pipelines/cifar_augment.py',
]

train_pipeline = _base_.autoaugment_train_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

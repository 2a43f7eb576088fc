# Shake-Shake (26, 2x112d) on CIFAR-10 with RandAugment: a baseline of the ISDA
# paper's Table 4. Its Table 2 recipe with the paper's code's pipeline:
# reflection padding 4, random crop 32, horizontal flip, then RandAugment (3
# operations at magnitude 9 of 30), then Cutout.
_base_ = [
    './shake-shake26-2x112d_1xb64-coslr-1800e_cifar10.py',
    '../../_base_/datasets/pipelines/cifar_augment.py',
]

train_pipeline = _base_.randaugment_n3_m9_train_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

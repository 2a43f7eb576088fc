# Semi-supervised CIFAR-10 JPEG copy (see cifar10-jpg_bs128.py and "Data" in
# the top-level README.md) with 4,000 labels, for CPU smoke runs: batches of
# 32 with 8 labeled images (a larger labeled fraction than the paper's 8 of
# 100, so that a few hundred iterations learn something). Views and split
# as semi-cifar10-4k-labels_bs100.py.
_base_ = './cifar10-jpg_bs128.py'

views = [
    dict(type='RandomCrop', crop_size=32, padding=2,
         padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        _delete_=True,
        type='SemiSupervisedDataset',
        num_labels=4000,
        seed=0,
        dataset=dict(
            type=_base_.dataset_type,
            data_root=_base_.data_root,
            ann_file='meta/train.txt',
            data_prefix='train',
            classes=_base_.classes,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='MultiView', num_views=2, transforms=[views]),
                dict(type='PackInputs'),
            ])),
    batch_sampler=dict(type='SemiSupervisedBatchSampler', num_labeled=8))

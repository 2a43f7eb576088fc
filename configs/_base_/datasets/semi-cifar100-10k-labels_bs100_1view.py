# Semi-supervised CIFAR-100 with 10,000 labels, one view per image (for
# temporal ensembling and VAT): semi-cifar100-10k-labels_bs100.py with the
# view of semi-cifar10-4k-labels_bs100_1view.py.
_base_ = './semi-cifar100-10k-labels_bs100.py'

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=2,
         padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))

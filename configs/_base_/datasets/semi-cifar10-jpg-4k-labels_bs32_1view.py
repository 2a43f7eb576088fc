# Semi-supervised CIFAR-10 JPEG copy with 4,000 labels, one view per image,
# for the CPU smoke runs of temporal ensembling and VAT: batches of 32 with
# 8 labeled as semi-cifar10-jpg-4k-labels_bs32.py, the view of
# semi-cifar10-4k-labels_bs100_1view.py.
_base_ = './semi-cifar10-jpg-4k-labels_bs32.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=2,
         padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))

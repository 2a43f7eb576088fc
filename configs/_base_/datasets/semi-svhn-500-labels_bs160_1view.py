# Semi-supervised SVHN with 500 labels, one view per image, in VAT's batches
# (Miyato's vat_tf, train_semisup.py: 32 labeled images and 128 drawn from
# all training images, 160 in all). The view as vat_tf's SVHN runs with
# --aug_trans (dataset_utils.py transform): translated by up to 2 pixels, not
# flipped. Split and data as semi-svhn-500-labels_bs100.py.
_base_ = './semi-svhn-500-labels_bs100.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=2,
         padding_mode='reflect'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=160,
    dataset=dict(dataset=dict(pipeline=train_pipeline)),
    batch_sampler=dict(num_labeled=32))

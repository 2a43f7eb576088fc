# Semi-supervised CIFAR-10 with 4,000 labels, one view per image: for the
# methods whose target needs no second view (temporal ensembling's target
# is the image's ensemble of past predictions, VAT's the prediction on the
# clean image). The view as in semi-cifar10-4k-labels_bs100.py: translated
# by up to 2 pixels (reflect padding) and flipped at random, as Laine &
# Aila's tempens train.py (augment_translation 2, augment_mirror) and
# Miyato's vat_tf (dataset_utils.py transform, --aug_trans --aug_flip).
_base_ = './semi-cifar10-4k-labels_bs100.py'

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=2,
         padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))

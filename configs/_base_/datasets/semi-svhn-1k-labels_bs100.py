# Semi-supervised SVHN with 1,000 labels as in Mean Teacher's ConvNet runs
# (Tarvainen & Valpola 2017; TensorFlow code, experiments/svhn_final_eval.py):
# 100 labeled images per digit, the 73,257 training images unlabeled,
# batches of 100 with 1 labeled image. Two views per image, each translated
# by up to 2 pixels (reflect padding), not flipped (digits). mmpretrain has
# no SVHN dataset: CustomDataset reads the images as files (see the README
# of configs/classification/semi for the conversion of the official .mat
# files), laid out as
#     data/svhn/{train,test}/<digit>/*.png
#     data/svhn/meta/classes.txt         ('0' ... '9')
#     data/svhn/meta/{train,test}.txt    ('<digit>/<file> <label>')
# The reference normalises each image; this uses SVHN's per-channel mean
# and std (RGB; the files decode to BGR).
_base_ = './semi-cifar10-4k-labels_bs100.py'

dataset_type = 'CustomDataset'
data_root = 'data/svhn'
data_preprocessor = dict(
    mean=[111.61, 113.16, 120.57], std=[50.50, 51.26, 50.24], to_rgb=True)
views = [
    dict(type='RandomCrop', crop_size=32, padding=2,
         padding_mode='reflect'),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[views]),
    dict(type='PackInputs'),
]
svhn = dict(
    _delete_=True,
    type=dataset_type,
    data_root=data_root,
    classes=data_root + '/meta/classes.txt')
train_dataloader = dict(
    dataset=dict(
        num_labels=1000,
        dataset=dict(
            svhn,
            ann_file='meta/train.txt',
            data_prefix='train',
            pipeline=train_pipeline)),
    batch_sampler=dict(num_labeled=1))
val_dataloader = dict(
    dataset=dict(
        svhn,
        ann_file='meta/test.txt',
        data_prefix='test',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')]))
test_dataloader = val_dataloader

# CIFAR-10 as JPEG files (all 60,000 images re-encoded as JPEG, one folder
# per class; see "Data" in the top-level README.md), laid out as
#     data/cifar10/{train,test}/<class>/*.jpg
#     data/cifar10/meta/classes.txt          (the official label order)
#     data/cifar10/meta/{train,test}.txt     ('<class>/<file> <label>')
# mmpretrain's CIFAR10 reads only the official pickles, so CustomDataset
# reads the images. Otherwise the zoo's CIFAR-10 data with 128 images per
# batch, as cifar10_bs128.py.
_base_ = './cifar10_bs128.py'

dataset_type = 'CustomDataset'
data_root = 'data/cifar10'
# official label order; read relative to the working directory, like
# data_root
classes = data_root + '/meta/classes.txt'

# JPEGs decode to BGR; the zoo's CIFAR mean and std are in RGB order
data_preprocessor = dict(to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

# meta/{train,test}.txt list '<class>/<file> <label>' under train/ and test/
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='train',
        classes=classes,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/test.txt',
        data_prefix='test',
        classes=classes,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

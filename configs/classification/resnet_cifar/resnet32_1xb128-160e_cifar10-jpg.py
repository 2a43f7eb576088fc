# ResNet-32 on the CIFAR-10 JPEG copy of /work/shared/data (DATA.md): the
# same images re-encoded as JPEG, in one folder per class. Unpack it from
# the repository root with
#     mkdir -p data && tar xzf ../shared/data/cifar10.tar.gz -C data/
# which gives data/cifar10/{train,test}/<class>/*.jpg and
# data/cifar10/meta/{train,test,classes}.txt. mmpretrain's CIFAR10 reads
# only the official pickles, so the images are read by CustomDataset.
_base_ = './resnet32_1xb128-160e_cifar10.py'

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

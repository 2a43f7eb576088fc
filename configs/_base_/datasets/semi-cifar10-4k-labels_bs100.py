# Semi-supervised CIFAR-10 with 4,000 labels as in Mean Teacher's ConvNet
# runs (Tarvainen & Valpola 2017; TensorFlow code, experiments/
# cifar10_final_eval.py and mean_teacher/minibatching.py): 400 labeled
# images per class drawn with a seed, all 50,000 images used unlabeled;
# batches of 100 with a fixed 8 labeled images (the reference draws batches
# from all images and keeps the labels it finds: 8 on average) and 92 drawn
# from all images, labels withheld. Each image comes as two views, one for
# the student and one for the teacher, each translated by up to 2 pixels
# (reflect padding) and flipped at random. The reference whitens with ZCA;
# this uses the zoo's per-channel normalisation. SemiSupervisedHook (the
# model bases add it) writes the split to <work_dir>/labeled_split.json.
_base_ = 'mmpretrain::_base_/datasets/cifar10_bs16.py'

views = [
    dict(type='RandomCrop', crop_size=32, padding=2,
         padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[views]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=100,
    dataset=dict(
        _delete_=True,
        type='SemiSupervisedDataset',
        num_labels=4000,
        seed=0,
        dataset=dict(
            type=_base_.dataset_type,
            data_root='data/cifar10',
            split='train',
            pipeline=train_pipeline)),
    batch_sampler=dict(type='SemiSupervisedBatchSampler', num_labeled=8))
val_dataloader = dict(batch_size=100)
test_dataloader = val_dataloader

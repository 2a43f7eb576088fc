# The zoo's CIFAR-10 data (mmpretrain's CIFAR10 dataset in data/cifar10;
# random crop 32 with padding 4, horizontal flip, per-channel normalisation)
# with 128 images per batch, for training and testing.
_base_ = 'mmpretrain::_base_/datasets/cifar10_bs16.py'

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

# The zoo's CIFAR-100 data (mmpretrain's CIFAR100 dataset in data/cifar100;
# random crop 32 with padding 4, horizontal flip, per-channel normalisation)
# with 128 images per batch, for training and testing.
_base_ = 'mmpretrain::_base_/datasets/cifar100_bs16.py'

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

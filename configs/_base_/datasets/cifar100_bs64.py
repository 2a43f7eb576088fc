# The zoo's CIFAR-100 data (random crop 32 with padding 4, horizontal flip,
# per-channel normalisation) with 64 images per batch, for training and
# testing: the batch of the ISDA paper's DenseNet-BC and Shake-Shake runs.
_base_ = './cifar100_bs128.py'

train_dataloader = dict(batch_size=64)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

# Semi-supervised CIFAR-100 with 10,000 labels (100 per class; the protocol
# of Laine & Aila 2017 that the ISDA paper's Table 6 follows), batches of
# 100 with 20 labeled images (the labeled fraction, as 8 of 100 for
# CIFAR-10 with 4,000 labels). Everything else as
# semi-cifar10-4k-labels_bs100.py, with the zoo's CIFAR-100 data.
_base_ = './semi-cifar10-4k-labels_bs100.py'

data_preprocessor = dict(
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418])
cifar100 = dict(type='CIFAR100', data_root='data/cifar100')
train_dataloader = dict(
    dataset=dict(num_labels=10000, dataset=cifar100),
    batch_sampler=dict(num_labeled=20))
val_dataloader = dict(dataset=cifar100)
test_dataloader = val_dataloader

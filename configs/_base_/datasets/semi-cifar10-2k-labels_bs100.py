# Semi-supervised CIFAR-10 with 2,000 labels (200 per class): batches of
# 100 with a fixed 4 labeled images (100 * 2000 / 50000, the references'
# average; see semi-cifar10-1k-labels_bs100.py). Views, split and
# normalisation as semi-cifar10-4k-labels_bs100.py.
_base_ = './semi-cifar10-4k-labels_bs100.py'

train_dataloader = dict(
    dataset=dict(num_labels=2000), batch_sampler=dict(num_labeled=4))

# Semi-supervised CIFAR-10 with 2,000 labels, one view per image: batches of
# 100 with 4 labeled (as semi-cifar10-2k-labels_bs100.py), the view of
# semi-cifar10-4k-labels_bs100_1view.py.
_base_ = './semi-cifar10-4k-labels_bs100_1view.py'

train_dataloader = dict(
    dataset=dict(num_labels=2000), batch_sampler=dict(num_labeled=4))

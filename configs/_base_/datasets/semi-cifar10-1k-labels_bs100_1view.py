# Semi-supervised CIFAR-10 with 1,000 labels, one view per image: batches of
# 100 with 2 labeled (as semi-cifar10-1k-labels_bs100.py), the view of
# semi-cifar10-4k-labels_bs100_1view.py.
_base_ = './semi-cifar10-4k-labels_bs100_1view.py'

train_dataloader = dict(
    dataset=dict(num_labels=1000), batch_sampler=dict(num_labeled=2))

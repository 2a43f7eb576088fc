# Semi-supervised CIFAR-100 with 20,000 labels, one view per image: batches
# of 100 with 40 labeled (as semi-cifar100-20k-labels_bs100.py), the view of
# semi-cifar100-10k-labels_bs100_1view.py.
_base_ = './semi-cifar100-10k-labels_bs100_1view.py'

train_dataloader = dict(
    dataset=dict(num_labels=20000), batch_sampler=dict(num_labeled=40))

# Semi-supervised CIFAR-100 with 20,000 labels (200 per class): batches of
# 100 with a fixed 40 labeled images (100 * 20000 / 50000, the labeled
# fraction). Everything else as semi-cifar100-10k-labels_bs100.py.
_base_ = './semi-cifar100-10k-labels_bs100.py'

train_dataloader = dict(
    dataset=dict(num_labels=20000), batch_sampler=dict(num_labeled=40))

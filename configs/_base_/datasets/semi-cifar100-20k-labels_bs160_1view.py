# Semi-supervised CIFAR-100 with 20,000 labels, one view per image, in VAT's
# batches (Miyato's vat_tf, train_semisup.py: batch_size 32 labeled images
# and ul_batch_size 128 images drawn from all training images): 160 images,
# 32 of them from the labeled subset. Split and view as
# semi-cifar100-20k-labels_bs100_1view.py.
_base_ = './semi-cifar100-20k-labels_bs100_1view.py'

train_dataloader = dict(batch_size=160, batch_sampler=dict(num_labeled=32))

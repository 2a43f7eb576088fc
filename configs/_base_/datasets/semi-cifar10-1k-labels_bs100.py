# Semi-supervised CIFAR-10 with 1,000 labels (100 per class): batches of
# 100 with a fixed 2 labeled images, the labeled fraction of the reference
# batches (Mean Teacher's TensorFlow code, experiments/cifar10_final_eval.py,
# 'vary' labeled per batch, and Laine & Aila's tempens train.py, batches
# drawn from all images: 100 * 1000 / 50000 = 2 on average). Views, split
# and normalisation as semi-cifar10-4k-labels_bs100.py.
_base_ = './semi-cifar10-4k-labels_bs100.py'

train_dataloader = dict(
    dataset=dict(num_labels=1000), batch_sampler=dict(num_labeled=2))

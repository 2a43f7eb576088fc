# Semi-supervised SVHN with 500 labels (50 per digit), as Mean Teacher's
# 500-label runs (TensorFlow code, experiments/svhn_final_eval.py: the
# settings of its 1,000-label runs, 1 labeled image per batch of 100).
# Everything else as semi-svhn-1k-labels_bs100.py.
_base_ = './semi-svhn-1k-labels_bs100.py'

train_dataloader = dict(dataset=dict(num_labels=500))

# The Pi-model (Laine & Aila, ICLR 2017) with the 13-layer ConvNet on
# CIFAR-100 with 20,000 labels, a cell of the ISDA paper's Table 6 (T-PAMI
# 2021). The reference's settings (github.com/smlaine2/tempens, config.py,
# "CIFAR-100: Pi", whose num_labels is 10000; train.py scales w_max by the
# labels itself, so 20,000 labels take the same settings): 300 epochs of
# batches of 100 (semi-tempens_adam-150k.py), lr 0.003, translation by 2
# pixels and flips, input noise 0.15, unsup_weight_max 100 scaled by labels
# / images (train.py): 100 * 20000 / 50000 = 40 for its squared error, i.e.
# 40 * 2 * (1 - 1/100) / 100^2 = 0.00792 on the KL divergence (the squared
# error is averaged over classes as in Mean Teacher's code, whose KL scaling
# this is).
_base_ = [
    '../../_base_/models/semi-pi-model_convnet13.py',
    '../../_base_/datasets/semi-cifar100-20k-labels_bs100.py',
    '../../_base_/schedules/semi-tempens_adam-150k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(head=dict(num_classes=100), consistency_weight=0.00792)

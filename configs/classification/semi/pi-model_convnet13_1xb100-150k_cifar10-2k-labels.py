# The Pi-model (Laine & Aila, ICLR 2017) with the 13-layer ConvNet on
# CIFAR-10 with 2,000 labels, a cell of the ISDA paper's Table 6 (T-PAMI
# 2021). The reference's settings (github.com/smlaine2/tempens, config.py,
# "CIFAR-10: Pi", whose num_labels is 4000; train.py scales w_max by the
# labels itself, so 2,000 labels take the same settings): 300 epochs of
# batches of 100 (semi-tempens_adam-150k.py), lr 0.003, translation by 2
# pixels and flips, input noise 0.15, unsup_weight_max 100 scaled by labels
# / images (train.py): 100 * 2000 / 50000 = 4 for its squared error, i.e. 4
# * 2 * (1 - 1/10) / 10^2 = 0.072 on the KL divergence (the squared error is
# averaged over classes as in Mean Teacher's code, whose KL scaling this
# is).
_base_ = [
    '../../_base_/models/semi-pi-model_convnet13.py',
    '../../_base_/datasets/semi-cifar10-2k-labels_bs100.py',
    '../../_base_/schedules/semi-tempens_adam-150k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(consistency_weight=0.072)

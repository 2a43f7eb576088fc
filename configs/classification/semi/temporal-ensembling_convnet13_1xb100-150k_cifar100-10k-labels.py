# Temporal ensembling (Laine & Aila, ICLR 2017) with the 13-layer ConvNet on
# CIFAR-100 with 10,000 labels, a cell of the ISDA paper's Table 6 (T-PAMI
# 2021). The reference's settings (github.com/smlaine2/tempens, config.py,
# "CIFAR-100: Temporal ensembling", num_labels 10000): 300 epochs of batches
# of 100 (semi-tempens_adam-150k.py), lr 0.003, translation by 2 pixels and
# flips, input noise 0.15, unsup_weight_max 100 scaled by labels / images
# (train.py): 100 * 10000 / 50000 = 20 for its squared error, i.e. 20 * 2 *
# (1 - 1/100) / 100^2 = 0.00396 on the KL divergence (the squared error is
# averaged over classes as in Mean Teacher's code, whose KL scaling this
# is).
_base_ = [
    '../../_base_/models/semi-temporal-ensembling_convnet13.py',
    '../../_base_/datasets/semi-cifar100-10k-labels_bs100_1view.py',
    '../../_base_/schedules/semi-tempens_adam-150k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(head=dict(num_classes=100), consistency_weight=0.00396)

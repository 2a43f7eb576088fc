# VAT (Miyato et al., T-PAMI 2018) with the 13-layer ConvNet on CIFAR-100
# with 10,000 labels, a cell of the ISDA paper's Table 6 (T-PAMI 2021).
# vat_tf's CIFAR-10 command with augmentation (README: --num_epochs=500
# --epoch_decay_start=460 --epsilon=8.0 --aug_flip=True --aug_trans=True
# --method=vat), its CIFAR-10 settings (derived: vat_tf has no CIFAR-100
# run, its network ends in 10 classes; VAT's weight 1 and epsilon do not
# depend on the number of classes, so they stay): 200000 iterations of 32
# labeled and 128 unlabeled images, epsilon 8.0, xi 1e-6.
_base_ = [
    '../../_base_/models/semi-vat_convnet13.py',
    '../../_base_/datasets/semi-cifar100-10k-labels_bs160_1view.py',
    '../../_base_/schedules/semi-vat_adam-200k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(head=dict(num_classes=100))

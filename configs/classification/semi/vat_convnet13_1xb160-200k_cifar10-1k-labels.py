# VAT (Miyato et al., T-PAMI 2018) with the 13-layer ConvNet on CIFAR-10
# with 1,000 labels, a cell of the ISDA paper's Table 6 (T-PAMI 2021).
# vat_tf's CIFAR-10 command with augmentation (README: --num_epochs=500
# --epoch_decay_start=460 --epsilon=8.0 --aug_flip=True --aug_trans=True
# --method=vat), its CIFAR-10 settings with 1,000 labels (cifar10.py
# num_labeled_examples; vat_tf ran 4,000, derived): 200000 iterations of 32
# labeled and 128 unlabeled images, epsilon 8.0, xi 1e-6.
_base_ = [
    '../../_base_/models/semi-vat_convnet13.py',
    '../../_base_/datasets/semi-cifar10-1k-labels_bs160_1view.py',
    '../../_base_/schedules/semi-vat_adam-200k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

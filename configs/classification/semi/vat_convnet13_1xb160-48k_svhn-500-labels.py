# VAT (Miyato et al., T-PAMI 2018) with the 13-layer ConvNet on SVHN with
# 500 labels, a cell of the ISDA paper's Table 6 (T-PAMI 2021). vat_tf's
# SVHN command with augmentation (README: --num_epochs=120
# --epoch_decay_start=80 --epsilon=3.5 --aug_trans=True; 1,000 labels,
# svhn.py num_labeled_examples): 48000 iterations of 32 labeled and 128
# unlabeled images. epsilon: vat_tf feeds SVHN as (x - 127.5) / 255, these
# configs per-channel normalised, (x - mean) / std with std about 50.7, so
# its 3.5 is 3.5 * 255 / 50.7 = 17.6 here (derived). Not run by vat_tf with
# 500 labels: its 1,000-label settings (derived). vat_tf adds a BN on the
# logits for SVHN (--top_bn); ISDA's linear head has none, so this does not.
_base_ = [
    '../../_base_/models/semi-vat_convnet13.py',
    '../../_base_/datasets/semi-svhn-500-labels_bs160_1view.py',
    '../../_base_/schedules/semi-vat_adam-48k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(epsilon=17.6)

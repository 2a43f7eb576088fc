# DeiT-S on ImageNet-1k: mmpretrain's own recipe, unchanged
# (mmpretrain::deit/deit-small_4xb256_in1k.py, Touvron et al. 2021 without
# drop path and EMA): 4 GPUs x 256 images, AdamW (lr 1e-3, weight decay
# 0.05) with 20 warm-up epochs and cosine decay over 300 epochs, RandAugment
# and random erasing, Mixup (alpha 0.8) + CutMix (alpha 1.0) on the batch,
# label smoothing 0.1. The baseline of the ISDA twin next to it.
_base_ = 'mmpretrain::deit/deit-small_4xb256_in1k.py'

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

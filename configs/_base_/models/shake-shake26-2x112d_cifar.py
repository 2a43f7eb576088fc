# Shake-Shake (26, 2x112d) of Gastaldi (2017) for 32x32 images, 10 classes:
# the 2x32d model with widths 112, 224 and 448 (448 features).
_base_ = './shake-shake26-2x32d_cifar.py'

model = dict(backbone=dict(base_channels=112), head=dict(in_channels=448))

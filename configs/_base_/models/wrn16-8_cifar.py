# Wide-ResNet-16-8 of Zagoruyko & Komodakis (2016) with dropout 0.3, for
# 32x32 images, 10 classes: WRN-28-10's model with two blocks per group and
# widths 128, 256 and 512 (512 features). The paper's code takes dropout
# from its command line and its README trains Wide-ResNets with 0.3; the
# ISDA paper sets no other rate for WRN-16-8, so it keeps 0.3.
_base_ = './wrn28-10_cifar.py'

model = dict(
    backbone=dict(depth=16, widen_factor=8), head=dict(in_channels=512))

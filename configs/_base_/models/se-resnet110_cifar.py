# SE-ResNet-110 (Hu et al., CVPR 2018) for 32x32 images, 10 classes: the
# CIFAR ResNet-110 of He et al. (2016) with a squeeze-and-excitation gate
# (reduction 16) on every basic block, as the ISDA paper's CIFAR experiments
# use it; isda_mm's CIFARSEResNet (64 features), global average pooling, a
# linear classifier. CIFARSEResNet is registered by isda_mm: a config using
# this model imports it (custom_imports).
_base_ = './resnet32_cifar.py'

model = dict(backbone=dict(type='CIFARSEResNet', depth=110))

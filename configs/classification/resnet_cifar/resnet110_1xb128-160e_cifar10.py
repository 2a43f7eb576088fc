# ResNet-110 (He et al. 2016) on CIFAR-10, with the recipe of ResNet-32.
_base_ = './resnet32_1xb128-160e_cifar10.py'

model = dict(backbone=dict(depth=110))

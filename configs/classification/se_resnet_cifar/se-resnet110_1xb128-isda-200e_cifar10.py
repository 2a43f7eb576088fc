# ISDA on SE-ResNet-110, CIFAR-10: the paper's CIFAR setting (full covariance,
# lambda0 = 0.5 reached linearly by epoch, as its scripts do).
_base_ = './se-resnet110_1xb128-200e_cifar10.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='epoch'))

# ISDA on ResNet-110, CIFAR-10: full covariance, lambda0 = 0.5 by epoch.
_base_ = './resnet110_1xb128-160e_cifar10.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='epoch'))

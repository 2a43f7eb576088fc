# ISDA on Wide-ResNet-28-10 with AutoAugment, CIFAR-10: the paper's CIFAR
# setting (full covariance, lambda0 = 0.5 reached linearly by epoch, as its
# scripts do).
_base_ = './wrn28-10_1xb128-autoaug-240e_cifar10.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='epoch'))

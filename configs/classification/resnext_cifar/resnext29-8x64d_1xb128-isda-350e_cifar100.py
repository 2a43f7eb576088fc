# ISDA on ResNeXt-29, 8x64d, CIFAR-100: the paper's CIFAR setting (full
# covariance, lambda0 = 0.5 reached linearly by epoch, as its scripts do).
_base_ = './resnext29-8x64d_1xb128-350e_cifar100.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='epoch'))

# ISDA on ResNet-32, CIFAR-10: the paper's CIFAR setting (full covariance,
# lambda0 = 0.5 reached linearly by epoch, as the paper's scripts do).
_base_ = './resnet32_1xb128-160e_cifar10.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='epoch'))

# ISDA on Shake-Shake (26, 2x32d) with Cutout, CIFAR-10: the paper's CIFAR
# setting (full covariance, lambda0 = 0.5 reached linearly by epoch, as its
# scripts do).
_base_ = './shake-shake26-2x32d_1xb64-cutout-coslr-1800e_cifar10.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='epoch'))

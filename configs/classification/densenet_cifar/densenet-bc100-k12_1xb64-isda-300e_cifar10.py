# ISDA on DenseNet-BC-100, k = 12, CIFAR-10: the paper's CIFAR setting (full
# covariance, lambda0 = 0.5 reached linearly by epoch, as its scripts do).
_base_ = './densenet-bc100-k12_1xb64-300e_cifar10.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='epoch'))

# ISDA on the Shake-Shake (26, 2x32d) CPU smoke recipe: the paper's CIFAR
# setting (full covariance, lambda0 = 0.5), lambda growing by iteration
# since the run is a fraction of an epoch.
_base_ = './shake-shake26-2x32d_1xb64-300it_cifar10-jpg.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='iter'))

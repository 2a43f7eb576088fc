# VAT + ISDA on the CPU smoke recipe: ISDALinearClsHead,
# full covariance, lambda0 = 0.5 growing by iteration.
_base_ = './vat_convnet13_1xb32-200it_cifar10-jpg-4k-labels.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='iter'))

# Mean Teacher + ISDA, CIFAR-100 with 10,000 labels: the baseline with
# ISDALinearClsHead, full covariance, lambda0 = 0.5 by iteration.
_base_ = './mean-teacher_convnet13_1xb100-150k_cifar100-10k-labels.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='iter'))

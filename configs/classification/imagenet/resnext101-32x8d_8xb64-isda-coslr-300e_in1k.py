# ISDA on ResNeXt-101 (32x8d), ImageNet-1k: the paper's ImageNet setting
# (diagonal covariance, lambda0 = 7.5 reached linearly by epoch).
_base_ = './resnext101-32x8d_8xb64-coslr-300e_in1k.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=7.5,
        covariance='diagonal',
        lambda_by='epoch'))

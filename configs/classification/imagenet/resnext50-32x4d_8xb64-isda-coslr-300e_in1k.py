# ISDA on ResNeXt-50 (32x4d), ImageNet-1k: the paper's ImageNet setting
# (diagonal covariance, lambda0 = 7.5 reached linearly by epoch).
_base_ = './resnext50-32x4d_8xb64-coslr-300e_in1k.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=7.5,
        covariance='diagonal',
        lambda_by='epoch'))

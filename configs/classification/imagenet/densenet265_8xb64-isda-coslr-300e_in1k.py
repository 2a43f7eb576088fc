# ISDA on DenseNet-BC-265, ImageNet-1k: the paper's ImageNet setting for
# DenseNets (diagonal covariance, lambda0 = 1.0 reached linearly by epoch).
_base_ = './densenet265_8xb64-coslr-300e_in1k.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=1.0,
        covariance='diagonal',
        lambda_by='epoch'))

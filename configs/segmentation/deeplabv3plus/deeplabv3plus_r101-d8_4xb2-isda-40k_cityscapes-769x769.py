# ISDA on both heads with the paper's Cityscapes settings.
_base_ = './deeplabv3plus_r101-d8_4xb2-40k_cityscapes-769x769.py'
model = dict(
    decode_head=dict(
        type='ISDADepthwiseSeparableASPPHead',
        lambda0=7.5,
        covariance='diagonal',
        lambda_by='iter'),
    auxiliary_head=dict(
        type='ISDAFCNHead',
        lambda0=7.5,
        covariance='diagonal',
        lambda_by='iter'))

# ISDA on both heads (each with its own statistics), as in the paper:
# diagonal covariance, lambda0 = 7.5, lambda growing per iteration.
_base_ = './pspnet_r101-d8_4xb2-40k_cityscapes-769x769.py'
model = dict(
    decode_head=dict(
        type='ISDAPSPHead',
        lambda0=7.5,
        covariance='diagonal',
        lambda_by='iter'),
    auxiliary_head=dict(
        type='ISDAFCNHead',
        lambda0=7.5,
        covariance='diagonal',
        lambda_by='iter'))

# ISDA on SegFormer's all-MLP head (its only head): diagonal covariance,
# lambda0 = 7.5, lambda growing per iteration.
_base_ = './segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'
model = dict(
    decode_head=dict(
        type='ISDASegformerHead',
        lambda0=7.5,
        covariance='diagonal',
        lambda_by='iter'))

# ISDA on the decode head and both auxiliary heads (each with its own
# statistics): diagonal covariance, lambda0 = 7.5, lambda growing per
# iteration, as in the paper's Cityscapes setting. A list in a config
# replaces its base's list, so the auxiliary heads are written out again.
_base_ = './fast_scnn_1xb8-3k_camvid-160x160.py'
isda = dict(lambda0=7.5, covariance='diagonal', lambda_by='iter')
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
aux_head = dict(
    type='ISDAFCNHead',
    channels=32,
    num_convs=1,
    num_classes=11,
    norm_cfg=norm_cfg,
    concat_input=False,
    align_corners=False,
    loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4),
    **isda)
model = dict(
    decode_head=dict(type='ISDADepthwiseSeparableFCNHead', **isda),
    auxiliary_head=[
        dict(in_channels=128, in_index=-2, **aux_head),
        dict(in_channels=64, in_index=-3, **aux_head),
    ])

# ISDA on the decode head and both auxiliary heads (each with its own
# statistics): diagonal covariance, lambda0 = 7.5, lambda growing per
# iteration, as in the paper's Cityscapes setting. A list in a config
# replaces its base's list, so the auxiliary heads are written out again,
# from the base's aux_head with the ISDA type and settings.
_base_ = './fast_scnn_1xb8-3k_camvid-160x160.py'
isda = dict(lambda0=7.5, covariance='diagonal', lambda_by='iter')
aux_head = dict(_base_.aux_head, type='ISDAFCNHead', **isda)
model = dict(
    decode_head=dict(type='ISDADepthwiseSeparableFCNHead', **isda),
    auxiliary_head=[
        dict(in_channels=128, in_index=-2, **aux_head),
        dict(in_channels=64, in_index=-3, **aux_head),
    ])

# ISDA inside the detector: on the classification branch of each cascade
# stage's bbox head, each with its own statistics and lambda (background RoIs
# excluded), diagonal covariance, lambda growing per iteration to
# lambda0 = 0.5. A list in a config replaces its base's list, so the three
# stages are written out again with the zoo's settings.
_base_ = './cascade-mask-rcnn_r50_fpn_1x_coco.py'
stage = dict(
    type='ISDAShared2FCBBoxHead',
    lambda0=0.5,
    covariance='diagonal',
    background='exclude',
    in_channels=256,
    fc_out_channels=1024,
    roi_feat_size=7,
    num_classes=80,
    reg_class_agnostic=True,
    loss_cls=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
model = dict(
    roi_head=dict(bbox_head=[
        dict(
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=stds),
            **stage) for stds in ([0.1, 0.1, 0.2, 0.2],
                                  [0.05, 0.05, 0.1, 0.1],
                                  [0.033, 0.033, 0.067, 0.067])
    ]))

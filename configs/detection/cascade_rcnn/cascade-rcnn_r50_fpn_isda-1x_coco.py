# ISDA inside the detector: on the classification branch of each cascade
# stage's bbox head, each with its own statistics and lambda (background RoIs
# excluded), diagonal covariance, lambda growing per iteration to
# lambda0 = 0.5. A list in a config replaces its base's list, so the three
# stages are rebuilt from the base's: each is the zoo's stage (its own box
# coder target stds) with the ISDA type and settings.
_base_ = './cascade-rcnn_r50_fpn_1x_coco.py'
model = dict(
    roi_head=dict(bbox_head=[
        dict(stage, type='ISDAShared2FCBBoxHead', lambda0=0.5,
             covariance='diagonal', background='exclude')
        for stage in _base_.model.roi_head.bbox_head
    ]))

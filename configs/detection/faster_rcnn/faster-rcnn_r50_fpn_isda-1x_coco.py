# ISDA inside the detector: on the classification branch of the RoI bbox
# head (background RoIs excluded from the statistics and the augmentation),
# diagonal covariance, lambda growing per iteration to lambda0 = 0.5.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    roi_head=dict(
        bbox_head=dict(
            type='ISDAShared2FCBBoxHead',
            lambda0=0.5,
            covariance='diagonal',
            background='exclude')))

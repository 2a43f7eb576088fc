# The same CPU-budget recipe with ISDA in the RoI bbox head (background RoIs
# excluded, diagonal covariance, lambda growing per iteration to 0.5).
_base_ = './mask-rcnn_r18_fpn_1xb2-8e_coco-mini-512x320.py'
model = dict(
    roi_head=dict(
        bbox_head=dict(
            type='ISDAShared2FCBBoxHead',
            lambda0=0.5,
            covariance='diagonal',
            background='exclude')))

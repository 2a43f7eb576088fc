# The main job's LeNet-5 on the digits, with a head written by a user and
# ISDA added to it (../isda_custom_head/two_layer_head.py). Run from the
# repository root with the repository on PYTHONPATH (see ../README.md).
_base_ = '../../../configs/classification/demo/lenet5_1xb64-30e_digits.py'
custom_imports = dict(
    imports=['isda_mm', 'projects.isda_custom_head.isda_custom_head'],
    allow_failed_imports=False)

model = dict(
    head=dict(
        _delete_=True,
        type='TwoLayerISDAHead',
        num_classes=10,
        in_channels=120,
        hidden=64,
        lambda0=0.5,
        loss=dict(type='CrossEntropyLoss')))

# DenseNet-BC-265 (growth rate 32, dense blocks of 6, 12, 64 and 48 layers,
# 64-filter stem; 33.3M parameters) on ImageNet-1k with the recipe of the
# ISDA paper's ImageNet experiments (its baseline): 300 epochs, cosine lr
# from 0.2, batch 512. mmpretrain names no 265 arch, so the dict replaces
# (_delete_) the zoo's arch='121'.
_base_ = [
    'mmpretrain::_base_/models/densenet/densenet121.py',
    'mmpretrain::_base_/datasets/imagenet_bs64.py',
    '../../_base_/schedules/imagenet_bs512_coslr_300e.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            growth_rate=32,
            depths=[6, 12, 64, 48],
            init_channels=64)),
    # 64 + 6*32 = 256 -> 128, + 12*32 = 512 -> 256, + 64*32 = 2304 -> 1152,
    # + 48*32: the last dense block ends with 2688 channels.
    head=dict(in_channels=2688))

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

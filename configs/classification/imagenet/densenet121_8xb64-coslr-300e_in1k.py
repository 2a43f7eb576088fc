# DenseNet-121 on ImageNet-1k with the recipe of the ISDA paper's ImageNet
# experiments (its baseline): 300 epochs, cosine lr from 0.2, batch 512.
_base_ = [
    'mmpretrain::_base_/models/densenet/densenet121.py',
    'mmpretrain::_base_/datasets/imagenet_bs64.py',
    '../../_base_/schedules/imagenet_bs512_coslr_300e.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

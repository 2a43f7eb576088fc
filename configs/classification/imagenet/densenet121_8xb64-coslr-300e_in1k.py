# DenseNet-121 on ImageNet-1k with the recipe of the ISDA paper's ImageNet
# experiments (its baseline): 300 epochs, cosine lr from 0.2, batch 512.
_base_ = [
    'mmpretrain::_base_/models/densenet/densenet121.py',
    'mmpretrain::_base_/datasets/imagenet_bs64.py',
    'mmpretrain::_base_/schedules/imagenet_bs256_coslr.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

# 8 GPUs x 64 images = 512; SGD (momentum 0.9, weight decay 1e-4) from lr
# 0.2, cosine-annealed to 0 over 300 epochs
optim_wrapper = dict(optimizer=dict(lr=0.2))
param_scheduler = dict(T_max=300, end=300)
train_cfg = dict(max_epochs=300)
auto_scale_lr = dict(base_batch_size=512)

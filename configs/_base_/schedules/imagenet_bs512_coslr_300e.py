# The ISDA paper's ImageNet schedule: 8 GPUs x 64 images = 512, SGD
# (momentum 0.9, weight decay 1e-4) from lr 0.2, cosine-annealed to 0 over
# 300 epochs (the zoo's imagenet_bs256_coslr schedule, changed).
_base_ = 'mmpretrain::_base_/schedules/imagenet_bs256_coslr.py'

optim_wrapper = dict(optimizer=dict(lr=0.2))
param_scheduler = dict(T_max=300, end=300)
train_cfg = dict(max_epochs=300)
auto_scale_lr = dict(base_batch_size=512)

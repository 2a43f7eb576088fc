# The CIFAR schedule of He et al. (2016) and of the ISDA paper's ResNets:
# 160 epochs of SGD (Nesterov, momentum 0.9, weight decay 1e-4) from lr 0.1,
# divided by 10 at epochs 80 and 120; batch 128 (the zoo's cifar10_bs128
# schedule, changed).
_base_ = 'mmpretrain::_base_/schedules/cifar10_bs128.py'

optim_wrapper = dict(optimizer=dict(nesterov=True))
param_scheduler = dict(milestones=[80, 120], gamma=0.1)
train_cfg = dict(max_epochs=160)

# The CIFAR schedule of Wide-ResNets (Zagoruyko & Komodakis 2016) and of the
# ISDA paper's WRN-28-10: 240 epochs of SGD (Nesterov, momentum 0.9, weight
# decay 5e-4) from lr 0.1, multiplied by 0.2 at epochs 60, 120, 160 and 200;
# batch 128 (the zoo's cifar10_bs128 schedule, changed).
_base_ = 'mmpretrain::_base_/schedules/cifar10_bs128.py'

optim_wrapper = dict(optimizer=dict(weight_decay=5e-4, nesterov=True))
param_scheduler = dict(milestones=[60, 120, 160, 200], gamma=0.2)
train_cfg = dict(max_epochs=240)

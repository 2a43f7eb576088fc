# The CIFAR schedule of DenseNets (Huang et al. 2017) and of the ISDA
# paper's DenseNet-BC (its code's densenet_bc recipe): 300 epochs of SGD
# (Nesterov, momentum 0.9, weight decay 1e-4) from lr 0.1, divided by 10 at
# epochs 150, 200 and 250; batch 64, the base of auto_scale_lr.
_base_ = './cifar_160e.py'

param_scheduler = dict(milestones=[150, 200, 250])
train_cfg = dict(max_epochs=300)
auto_scale_lr = dict(base_batch_size=64)

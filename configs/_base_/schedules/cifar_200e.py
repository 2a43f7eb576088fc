# The CIFAR schedule of the ISDA paper's SE-ResNets (its code's se_resnet
# recipe): 200 epochs of SGD (Nesterov, momentum 0.9, weight decay 1e-4)
# from lr 0.1, divided by 10 at epochs 80, 120 and 160; batch 128.
_base_ = './cifar_160e.py'

param_scheduler = dict(milestones=[80, 120, 160])
train_cfg = dict(max_epochs=200)

# The CIFAR schedule of the ISDA paper's ResNeXt-29 (its code's resnext
# recipe): 350 epochs of SGD (Nesterov, momentum 0.9, weight decay 5e-4)
# from lr 0.05, divided by 10 at epochs 150, 225 and 300; batch 128.
_base_ = './cifar_160e.py'

optim_wrapper = dict(optimizer=dict(lr=0.05, weight_decay=5e-4))
param_scheduler = dict(milestones=[150, 225, 300])
train_cfg = dict(max_epochs=350)

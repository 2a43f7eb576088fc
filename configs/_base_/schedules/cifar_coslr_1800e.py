# The CIFAR schedule of Shake-Shake (Gastaldi 2017) and of the ISDA paper's
# Shake-Shake runs (its code's shake_shake recipe with --cos_lr): 1800
# epochs of SGD (Nesterov, momentum 0.9, weight decay 1e-4) from lr 0.1 on a
# cosine to 0, set once per epoch; batch 64, the base of auto_scale_lr.
# The paper's code sets epoch e's lr from cos(pi (e + 1) / 1800), mmengine
# from cos(pi e / 1800): one epoch apart out of 1800.
_base_ = './cifar_160e.py'

param_scheduler = dict(
    _delete_=True,
    type='CosineAnnealingLR',
    T_max=1800,
    eta_min=0.,
    by_epoch=True,
    begin=0,
    end=1800)
train_cfg = dict(max_epochs=1800)
auto_scale_lr = dict(base_batch_size=64)

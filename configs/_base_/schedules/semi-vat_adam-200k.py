# VAT's schedule for CIFAR-10 with augmentation (Miyato et al., T-PAMI
# 2018; their code, github.com/takerum/vat_tf, train_semisup.py and the
# README's CIFAR-10 command: --num_epochs=500 --epoch_decay_start=460,
# num_iter_per_epoch 400): 200000 iterations; Adam with lr 0.001 (TF's
# defaults otherwise: beta2 0.999, epsilon 1e-8, no weight decay), constant
# until iteration 184000, then decayed linearly to 0 at the end (train.py
# sets lr * (500 - epoch) / 40 once an epoch), and beta1 (mom1) 0.9 -> 0.5
# (mom2) from iteration 184000. mmengine's own schedulers express it: no
# ramp-up, no sigmoid. With mmpretrain's default runtime, counted in
# iterations.
_base_ = 'mmpretrain::_base_/default_runtime.py'

optim_wrapper = dict(
    optimizer=dict(
        type='Adam', lr=0.001, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=184000, end=200000),
    dict(type='MultiStepMomentum', milestones=[184000], gamma=0.5 / 0.9,
         by_epoch=False),
]
train_cfg = dict(by_epoch=False, max_iters=200000, val_interval=5000)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(by_epoch=False, interval=10000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)

# Mean Teacher's ConvNet schedule (Tarvainen & Valpola 2017, Appendix B.1;
# TensorFlow code, mean_teacher/model.py and experiments/
# cifar10_final_eval.py): Adam with lr 0.003 reached by a sigmoid ramp-up
# exp(-5 (1 - t/40000)^2) and left by a sigmoid ramp-down over the last
# 25000 iterations, beta1 0.9 -> 0.5 with the ramp-down, beta2 0.99 during
# the ramp-up and 0.999 after, no weight decay; 150000 iterations of one
# batch of 100 (CIFAR-10), evaluated every 5000. With mmpretrain's default
# runtime, its logs and checkpoints counted in iterations (its default hooks
# and this schedule's cannot come from two bases side by side).
_base_ = 'mmpretrain::_base_/default_runtime.py'

optim_wrapper = dict(
    optimizer=dict(
        type='Adam', lr=0.003, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0))
param_scheduler = dict(
    type='MeanTeacherRampLR',
    by_epoch=False,
    total_iters=150000,
    rampup_iters=40000,
    rampdown_iters=25000,
    betas1=(0.9, 0.5),
    betas2=(0.99, 0.999))
train_cfg = dict(by_epoch=False, max_iters=150000, val_interval=5000)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(by_epoch=False, interval=10000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)

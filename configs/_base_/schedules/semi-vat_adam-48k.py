# VAT's schedule for SVHN with augmentation (vat_tf's README SVHN command:
# --num_epochs=120 --epoch_decay_start=80, 400 iterations an epoch): 48000
# iterations, lr 0.001 decayed linearly to 0 over the last 16000 (from
# iteration 32000), beta1 0.9 -> 0.5 from there. Otherwise as
# semi-vat_adam-200k.py.
_base_ = './semi-vat_adam-200k.py'

param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=32000, end=48000),
    dict(type='MultiStepMomentum', milestones=[32000], gamma=0.5 / 0.9,
         by_epoch=False),
]
train_cfg = dict(max_iters=48000)

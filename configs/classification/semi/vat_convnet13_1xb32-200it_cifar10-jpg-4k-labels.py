# VAT with the 13-layer ConvNet on the CIFAR-10 JPEG copy with 4,000
# labels: a CPU smoke recipe, not a published one. The CIFAR-10 recipe
# (vat_convnet13_1xb160-200k_cifar10-4k-labels.py) cut to 200 iterations of
# 32 images, 8 labeled and 24 drawn from all images (VAT's 32 + 128 would
# be five times slower), lr decayed linearly and beta1 0.5 over the last 40
# iterations; the consistency, applied to the 24, weighs 32 / 24 = 4/3 for
# a mean over them; one evaluation at the end on a class-balanced fifth of
# the test split.
_base_ = [
    '../../_base_/models/semi-vat_convnet13.py',
    '../../_base_/datasets/semi-cifar10-jpg-4k-labels_bs32_1view.py',
    '../../_base_/schedules/semi-vat_adam-200k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(consistency_weight=32 / 24)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=160, end=200),
    dict(type='MultiStepMomentum', milestones=[160], gamma=0.5 / 0.9,
         by_epoch=False),
]
train_cfg = dict(max_iters=200, val_interval=200)
# every 5th test image: 200 per class, 2,000 in all
val_dataloader = dict(dataset=dict(indices=list(range(0, 10000, 5))))
test_dataloader = val_dataloader
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=200))

# The Pi-model with the 13-layer ConvNet on the CIFAR-10 JPEG copy with
# 4,000 labels: a CPU smoke recipe, not a published one. The CIFAR-10
# recipe (pi-model_convnet13_1xb100-150k_cifar10-4k-labels.py) cut to 200
# iterations of 32 images (8 labeled), as the Mean Teacher smoke pair
# (mean-teacher_convnet13_1xb32-200it_cifar10-jpg-4k-labels.py): lr and
# consistency weight ramped up over 60 iterations, lr ramped down over the
# last 40, one evaluation at the end on a class-balanced fifth of the test
# split.
_base_ = [
    '../../_base_/models/semi-pi-model_convnet13.py',
    '../../_base_/datasets/semi-cifar10-jpg-4k-labels_bs32.py',
    '../../_base_/schedules/semi-tempens_adam-150k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(consistency_weight=0.144, rampup_iters=60)
param_scheduler = dict(total_iters=200, rampup_iters=60, rampdown_iters=40)
train_cfg = dict(max_iters=200, val_interval=200)
# every 5th test image: 200 per class, 2,000 in all
val_dataloader = dict(dataset=dict(indices=list(range(0, 10000, 5))))
test_dataloader = val_dataloader
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=200))

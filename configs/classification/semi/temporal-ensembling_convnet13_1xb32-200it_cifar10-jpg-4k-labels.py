# Temporal ensembling with the 13-layer ConvNet on the CIFAR-10 JPEG copy
# with 4,000 labels: a CPU smoke recipe, not a published one. The CIFAR-10
# recipe (temporal-ensembling_convnet13_1xb100-150k_cifar10-4k-labels.py)
# cut to 200 iterations of 32 images (8 labeled), one view each, ramps as
# the Pi-model's smoke recipe. 6,400 images are fewer than one pass over
# the 50,000: most images get their first ensemble prediction here, so the
# run shows the pipeline, not the ensemble's effect.
_base_ = [
    '../../_base_/models/semi-temporal-ensembling_convnet13.py',
    '../../_base_/datasets/semi-cifar10-jpg-4k-labels_bs32_1view.py',
    '../../_base_/schedules/semi-tempens_adam-150k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(consistency_weight=0.0432, rampup_iters=60)
param_scheduler = dict(total_iters=200, rampup_iters=60, rampdown_iters=40)
train_cfg = dict(max_iters=200, val_interval=200)
# every 5th test image: 200 per class, 2,000 in all
val_dataloader = dict(dataset=dict(indices=list(range(0, 10000, 5))))
test_dataloader = val_dataloader
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=200))

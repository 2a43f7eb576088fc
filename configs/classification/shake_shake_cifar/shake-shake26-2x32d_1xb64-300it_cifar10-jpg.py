# Shake-Shake (26, 2x32d) on the CIFAR-10 JPEG copy: a CPU-budget smoke
# recipe for a Table 2 network, not the paper's. The network, batch and
# optimizer of shake-shake26-2x32d_1xb64-coslr-1800e_cifar10.py (SGD from lr
# 0.1, Nesterov, momentum 0.9, weight decay 1e-4, cosine to 0), the cosine
# squeezed into 300 iterations (0.38 epoch) and evaluated once at the end on
# the 10k test images. The data as ../resnet_cifar/resnet32_1xb128-160e_
# cifar10-jpg.py ("Data" in the top-level README.md says where to get it).
_base_ = [
    '../../_base_/models/shake-shake26-2x32d_cifar.py',
    '../../_base_/datasets/cifar10-jpg_bs128.py',
    '../../_base_/schedules/cifar_coslr_1800e.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

train_dataloader = dict(batch_size=64)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

param_scheduler = dict(T_max=300, by_epoch=False, end=300)
train_cfg = dict(
    _delete_=True, by_epoch=False, max_iters=300, val_interval=300)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=300))
log_processor = dict(by_epoch=False)

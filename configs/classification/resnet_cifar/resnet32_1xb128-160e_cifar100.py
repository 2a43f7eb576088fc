# ResNet-32 (He et al. 2016) on CIFAR-100: the baseline of the ISDA paper's
# CIFAR experiments. The zoo's CIFAR-100 data (random crop 32 with padding 4,
# horizontal flip), schedule and runtime, changed to the paper's recipe:
# 1 GPU x 128 images, 160 epochs of SGD (Nesterov, momentum 0.9, weight decay
# 1e-4) from lr 0.1, divided by 10 at epochs 80 and 120.
_base_ = [
    '../../_base_/models/resnet32_cifar.py',
    '../../_base_/datasets/cifar100_bs128.py',
    '../../_base_/schedules/cifar_160e.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(head=dict(num_classes=100))

# SE-ResNet-110 (Hu et al. 2018) on CIFAR-100: a baseline of the ISDA paper's
# Table 2. The zoo's CIFAR-100 data (random crop 32 with padding 4, horizontal
# flip) and runtime, with the paper's recipe for SE-ResNets: 1 GPU x 128
# images, 200 epochs of SGD (Nesterov, momentum 0.9, weight decay 1e-4) from lr
# 0.1, divided by 10 at epochs 80, 120 and 160.
_base_ = [
    '../../_base_/models/se-resnet110_cifar.py',
    '../../_base_/datasets/cifar100_bs128.py',
    '../../_base_/schedules/cifar_200e.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(head=dict(num_classes=100))

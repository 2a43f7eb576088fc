# ResNeXt-29, 8x64d (Xie et al. 2017) on CIFAR-100: a baseline of the ISDA
# paper's Table 2. The zoo's CIFAR-100 data (random crop 32 with padding 4,
# horizontal flip) and runtime, with the paper's recipe for ResNeXts: 1 GPU x
# 128 images, 350 epochs of SGD (Nesterov, momentum 0.9, weight decay 5e-4)
# from lr 0.05, divided by 10 at epochs 150, 225 and 300.
_base_ = [
    '../../_base_/models/resnext29-8x64d_cifar.py',
    '../../_base_/datasets/cifar100_bs128.py',
    '../../_base_/schedules/cifar_350e.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(head=dict(num_classes=100))

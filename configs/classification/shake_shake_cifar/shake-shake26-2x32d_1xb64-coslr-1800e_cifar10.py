# Shake-Shake (26, 2x32d) of Gastaldi (2017) on CIFAR-10: a baseline of the
# ISDA paper's Table 2. The zoo's CIFAR-10 data (random crop 32 with padding 4,
# horizontal flip) and runtime, with the paper's recipe for Shake-Shake: 1 GPU
# x 64 images, 1800 epochs of SGD (Nesterov, momentum 0.9, weight decay 1e-4)
# from lr 0.1 on a cosine to 0, set once per epoch.
_base_ = [
    '../../_base_/models/shake-shake26-2x32d_cifar.py',
    '../../_base_/datasets/cifar10_bs64.py',
    '../../_base_/schedules/cifar_coslr_1800e.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

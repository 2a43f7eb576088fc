# Wide-ResNet-16-8 (Zagoruyko & Komodakis 2016) with dropout 0.3 on CIFAR-10: a
# baseline of the ISDA paper's Table 2. The zoo's CIFAR-10 data (random crop 32
# with padding 4, horizontal flip) and runtime, with the paper's recipe for
# Wide-ResNets: 1 GPU x 128 images, 240 epochs of SGD (Nesterov, momentum 0.9,
# weight decay 5e-4) from lr 0.1, multiplied by 0.2 at epochs 60, 120, 160 and
# 200.
_base_ = [
    '../../_base_/models/wrn16-8_cifar.py',
    '../../_base_/datasets/cifar10_bs128.py',
    '../../_base_/schedules/cifar_240e.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

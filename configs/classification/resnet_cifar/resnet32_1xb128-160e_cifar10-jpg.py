# ResNet-32 on the CIFAR-10 JPEG copy (the same images re-encoded as JPEG,
# one folder per class; "Data" in the top-level README.md says where to get
# it): data/cifar10/{train,test}/<class>/*.jpg with
# data/cifar10/meta/{train,test,classes}.txt, read by CustomDataset.
# Everything else as resnet32_1xb128-160e_cifar10.py.
_base_ = [
    '../../_base_/models/resnet32_cifar.py',
    '../../_base_/datasets/cifar10-jpg_bs128.py',
    '../../_base_/schedules/cifar_160e.py',
    'mmpretrain::_base_/default_runtime.py',
]

# isda_mm registers the ISDA heads and the CIFAR backbones.
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

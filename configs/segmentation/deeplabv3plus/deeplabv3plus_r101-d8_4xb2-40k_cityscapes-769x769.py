# Beyond the paper: the zoo's DeepLab-v3+, ResNet-101 D8, with the paper's
# Cityscapes recipe (769x769, 40k iterations, 4 GPUs x 2, lr 0.01 poly).
_base_ = ('mmseg::deeplabv3plus/'
          'deeplabv3plus_r101-d8_4xb2-40k_cityscapes-769x769.py')
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

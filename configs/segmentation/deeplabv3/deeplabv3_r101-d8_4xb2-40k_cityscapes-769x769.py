# The paper's Cityscapes baseline: the zoo's DeepLab-v3, ResNet-101 D8,
# 769x769 crops, 40k iterations, 4 GPUs x 2 images, SGD lr 0.01 poly,
# weight decay 5e-4, auxiliary FCN head with loss weight 0.4.
_base_ = 'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-769x769.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

# Beyond the paper: the zoo's SegFormer MiT-B0 on Cityscapes (1024x1024,
# 160k iterations, 8 GPUs x 1), unchanged.
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'
custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

# The training pipelines of the ISDA paper's Table 4 (T-PAMI 2021): its
# standard CIFAR augmentation plus Cutout, RandAugment + Cutout or
# AutoAugment + Cutout. A config picks one with
#     train_pipeline = _base_.cutout_train_pipeline
#     train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# ClippedCutout is registered by isda_mm (the configs import it).
_base_ = './cifar10_autoaugment_policy.py'

# The paper's code pads 4 pixels by reflection, then crops 32 at random.
# mmpretrain's RandomCrop pads with zeros whatever its padding_mode when
# given `padding`, so the reflection is a crop to 40 with pad_if_needed
# (it pads (40 - 32) / 2 = 4 on every side and keeps the whole image),
# then the random crop to 32.
cifar_crop_flip = [
    dict(type='RandomCrop', crop_size=40, pad_if_needed=True,
         padding_mode='reflect'),
    dict(type='RandomCrop', crop_size=32),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
# Cutout (DeVries & Taylor 2017) as the paper's code: one 16x16 hole,
# clipped at the borders, on every image, after any policy.
cifar_cutout_pack = [
    dict(type='ClippedCutout', n_holes=1, length=16),
    dict(type='PackInputs'),
]

# RandAugment (Cubuk et al., CVPRW 2020, Section 3): N operations drawn
# uniformly from these 14, each applied at magnitude M. The paper's code
# has no RandAugment; these are the RandAugment paper's 14 operations
# (identity is a KeyMapper with nothing to map) with the magnitude ranges
# of the AutoAugment policy above, on a 0..30 scale (30 = AutoAugment's
# largest; torchvision's RandAugment reads M the same way) and applied
# with probability 1, as the RandAugment paper describes.
randaugment_ops = [
    dict(type='KeyMapper'),
    dict(type='AutoContrast', prob=1.),
    dict(type='Equalize', prob=1.),
    dict(type='Rotate', magnitude_range=(0, 30), prob=1.),
    dict(type='Solarize', magnitude_range=(256, 0), prob=1.),
    dict(type='ColorTransform', magnitude_range=(0, 0.9), prob=1.),
    dict(type='Posterize', magnitude_range=(8, 4), prob=1.),
    dict(type='Contrast', magnitude_range=(0, 0.9), prob=1.),
    dict(type='Brightness', magnitude_range=(0, 0.9), prob=1.),
    dict(type='Sharpness', magnitude_range=(0, 0.9), prob=1.),
    dict(type='Shear', magnitude_range=(0, 0.3), direction='horizontal',
         prob=1.),
    dict(type='Shear', magnitude_range=(0, 0.3), direction='vertical',
         prob=1.),
    dict(type='Translate', magnitude_range=(0, 150 / 331),
         direction='horizontal', prob=1.),
    dict(type='Translate', magnitude_range=(0, 150 / 331),
         direction='vertical', prob=1.),
]

cutout_train_pipeline = cifar_crop_flip + cifar_cutout_pack
autoaugment_train_pipeline = cifar_crop_flip + [
    dict(type='AutoAugment', policies=_base_.cifar10_autoaugment_policy)
] + cifar_cutout_pack
# The RandAugment paper's (N, M) for the ISDA paper's networks (its
# appendix, CIFAR): Wide-ResNet-28-10 (3, 5) on CIFAR-10 and (2, 14) on
# CIFAR-100; Shake-Shake (26, 2x96d) (3, 9) on CIFAR-10, which the
# Shake-Shake configs use on both data sets (the paper gives no Shake-Shake
# value for CIFAR-100). Cutout follows, as in the RandAugment paper.
randaugment_n3_m5_train_pipeline = cifar_crop_flip + [
    dict(type='RandAugment', policies=randaugment_ops, num_policies=3,
         magnitude_level=5, total_level=30)
] + cifar_cutout_pack
randaugment_n2_m14_train_pipeline = cifar_crop_flip + [
    dict(type='RandAugment', policies=randaugment_ops, num_policies=2,
         magnitude_level=14, total_level=30)
] + cifar_cutout_pack
randaugment_n3_m9_train_pipeline = cifar_crop_flip + [
    dict(type='RandAugment', policies=randaugment_ops, num_policies=3,
         magnitude_level=9, total_level=30)
] + cifar_cutout_pack

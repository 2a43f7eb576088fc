# The CIFAR-10 policy of AutoAugment (Cubuk et al., CVPR 2019) as the ISDA
# paper's code applies it (its autoaugment.py, CIFAR10Policy): 25
# sub-policies, one drawn uniformly per image; each holds two operations,
# each applied with its own probability. Written for
# mmpretrain's AutoAugment, whose hparams give Shear, Translate and Rotate
# the fill 128 the paper's code uses.
#
# Magnitudes: the paper's code maps a bin i in 0..9 onto 10 evenly spaced
# values: shear 0.3 * i / 9, translate (150 / 331) * i / 9 of the image side,
# rotate 30 * i / 9 degrees, colour / contrast / sharpness / brightness
# factor 1 +- 0.9 * i / 9, posterize round(8 - 4 * i / 9) bits, solarize
# threshold 256 * (9 - i) / 9. Shear, translate and the four factors take a
# random sign (mmpretrain's default random_negative_prob=0.5); rotation has
# none there, always counter-clockwise, which is a negative angle for mmcv
# (positive is clockwise), hence random_negative_prob=0.
#
# Where mmpretrain differs from PIL (which the paper's code calls): Shear
# and Rotate resample with OpenCV (bicubic, nearest) and differ from PIL's
# at a few edge pixels; ColorTransform and Contrast take the grey image with
# BGR weights, so on mmpretrain's RGB CIFAR arrays red and blue swap luma
# weights (0.299 <-> 0.114); Sharpness blends the one-pixel frame of the
# image, which PIL leaves as it is. Solarize, Posterize, Invert, Equalize,
# AutoContrast, Brightness and Translate give PIL's pixels
# (tests/test_classification/test_cifar_augment.py).
cifar10_autoaugment_policy = [
    [dict(type='Invert', prob=0.1),
     dict(type='Contrast', magnitude=0.6, prob=0.2)],
    [dict(type='Rotate', angle=-30 / 9 * 2, prob=0.7,
          random_negative_prob=0.),
     dict(type='Translate', magnitude=150 / 331, prob=0.3,
          direction='horizontal')],
    [dict(type='Sharpness', magnitude=0.1, prob=0.8),
     dict(type='Sharpness', magnitude=0.3, prob=0.9)],
    [dict(type='Shear', magnitude=0.3 / 9 * 8, prob=0.5,
          direction='vertical'),
     dict(type='Translate', magnitude=150 / 331, prob=0.7,
          direction='vertical')],
    [dict(type='AutoContrast', prob=0.5),
     dict(type='Equalize', prob=0.9)],
    [dict(type='Shear', magnitude=0.3 / 9 * 7, prob=0.2,
          direction='vertical'),
     dict(type='Posterize', bits=5, prob=0.3)],
    [dict(type='ColorTransform', magnitude=0.3, prob=0.4),
     dict(type='Brightness', magnitude=0.7, prob=0.6)],
    [dict(type='Sharpness', magnitude=0.9, prob=0.3),
     dict(type='Brightness', magnitude=0.9, prob=0.7)],
    [dict(type='Equalize', prob=0.6),
     dict(type='Equalize', prob=0.5)],
    [dict(type='Contrast', magnitude=0.7, prob=0.6),
     dict(type='Sharpness', magnitude=0.5, prob=0.6)],
    [dict(type='ColorTransform', magnitude=0.7, prob=0.7),
     dict(type='Translate', magnitude=150 / 331 / 9 * 8, prob=0.5,
          direction='horizontal')],
    [dict(type='Equalize', prob=0.3),
     dict(type='AutoContrast', prob=0.4)],
    [dict(type='Translate', magnitude=150 / 331 / 9 * 3, prob=0.4,
          direction='vertical'),
     dict(type='Sharpness', magnitude=0.6, prob=0.2)],
    [dict(type='Brightness', magnitude=0.6, prob=0.9),
     dict(type='ColorTransform', magnitude=0.8, prob=0.2)],
    [dict(type='Solarize', thr=256 / 9 * 7, prob=0.5),
     dict(type='Invert', prob=0.)],
    [dict(type='Equalize', prob=0.2),
     dict(type='AutoContrast', prob=0.6)],
    [dict(type='Equalize', prob=0.2),
     dict(type='Equalize', prob=0.8)],
    [dict(type='ColorTransform', magnitude=0.9, prob=0.9),
     dict(type='Equalize', prob=0.6)],
    [dict(type='AutoContrast', prob=0.8),
     dict(type='Solarize', thr=256 / 9, prob=0.2)],
    [dict(type='Brightness', magnitude=0.3, prob=0.1),
     dict(type='ColorTransform', magnitude=0., prob=0.7)],
    [dict(type='Solarize', thr=256 / 9 * 4, prob=0.4),
     dict(type='AutoContrast', prob=0.9)],
    [dict(type='Translate', magnitude=150 / 331, prob=0.9,
          direction='vertical'),
     dict(type='Translate', magnitude=150 / 331, prob=0.7,
          direction='vertical')],
    [dict(type='AutoContrast', prob=0.9),
     dict(type='Solarize', thr=256 / 9 * 6, prob=0.8)],
    [dict(type='Equalize', prob=0.8),
     dict(type='Invert', prob=0.1)],
    [dict(type='Translate', magnitude=150 / 331, prob=0.7,
          direction='vertical'),
     dict(type='AutoContrast', prob=0.9)],
]

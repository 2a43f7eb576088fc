# ISDA on the DeiT-tiny CIFAR-10 smoke recipe: Mixup + CutMix and label
# smoothing of the baseline untouched; only the head changes. The paper's
# CIFAR setting: full class covariances (192 features x 10 classes: cheap),
# lambda0 = 0.5. lambda grows linearly by iteration, not by epoch as in
# ../resnet_cifar: the 300 iterations are a fifth of an epoch (1563
# iterations of 32), so by epoch lambda would stay 0 for the whole run.
_base_ = './deit-tiny-p4_1xb32-300it_cifar10-jpg.py'

model = dict(
    head=dict(
        type='ISDAVisionTransformerClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='iter'))

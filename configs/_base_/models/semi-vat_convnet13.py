# Virtual adversarial training (Miyato et al., T-PAMI 2018) around the
# classifier of semi-mean-teacher_convnet13.py: their "conv-large" is the
# same 13-layer ConvNet (code: github.com/takerum/vat_tf, cnn.py: BN, leaky
# ReLU 0.1, dropout 0.5, global average pooling, a linear classifier on 128
# features). The target is the prediction on the clean image, without
# gradient; the student sees x + r_adv, r_adv = epsilon g / ||g||, g from
# one power iteration (num_power_iterations 1) of the KL's gradient at a
# random direction of length xi = 1e-6 (vat.py). One view per image (the
# one-view dataset bases). As vat_tf's train_semisup.py: the supervised
# loss is the labeled images' mean cross-entropy, the VAT loss is applied
# to the unlabeled part of the batch only (the 128 images drawn from all
# training images, not the 32 labeled ones) with weight 1 and no ramp-up,
# no input noise, no entropy minimisation (--method=vat, not vatent). The
# consistency is averaged over the whole batch of 160, so its weight is
# 160 / 128 = 1.25 for vat_tf's mean over 128. epsilon is that of vat_tf's
# README for CIFAR-10 with augmentation, 8.0 (its ZCA-whitened inputs and
# the per-channel normalised ones here both have unit variance per pixel);
# SVHN's config sets its own.
_base_ = './semi-mean-teacher_convnet13.py'

model = dict(
    _delete_=True,
    type='ISDAVAT',
    backbone=_base_.model.backbone,
    neck=_base_.model.neck,
    head=_base_.model.head,
    consistency='kl',
    consistency_weight=1.25,
    rampup_iters=0,
    input_noise=0.0,
    consistency_on_labeled=False,
    supervised_normalizer='labeled',
    xi=1e-6,
    epsilon=8.0,
    power_iterations=1,
    entropy_weight=0.0)
custom_hooks = [dict(type='SemiSupervisedHook')]

# The Pi-model (Laine & Aila, "Temporal Ensembling for Semi-Supervised
# Learning", ICLR 2017) around the classifier of
# semi-mean-teacher_convnet13.py: their 13-layer ConvNet (isda_mm's
# ConvNet13: BN, leaky ReLU 0.1, dropout 0.5), global average pooling, a
# linear classifier on 128 features. The target is a second stochastic pass
# of the same network on a second view (other translation, noise and
# dropout), without gradient. Settings common to their CIFAR runs (code:
# github.com/smlaine2/tempens, config.py and train.py): Gaussian input noise
# 0.15 (augment_noise_stddev), consistency on every image, labeled ones
# too, the supervised loss summed over the labeled images and divided by the
# batch size (T.mean of the masked cross-entropy), the consistency weight
# ramped up by exp(-5 (1 - t/T)^2) over 80 epochs of 500 iterations, 40000.
# The consistency is the KL divergence, which ISDA bounds (the reference
# uses the squared error; each config converts its weight and sets it).
# ISDAPiModel and ConvNet13 are registered by isda_mm: a config using this
# model imports it (custom_imports).
_base_ = './semi-mean-teacher_convnet13.py'

model = dict(
    _delete_=True,
    type='ISDAPiModel',
    backbone=_base_.model.backbone,
    neck=_base_.model.neck,
    head=_base_.model.head,
    consistency='kl',
    rampup_iters=40000,
    input_noise=0.15,
    consistency_on_labeled=True,
    supervised_normalizer='batch')
custom_hooks = [dict(type='SemiSupervisedHook')]

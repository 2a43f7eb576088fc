# Mean Teacher (Tarvainen & Valpola, NeurIPS 2017) around the 13-layer
# ConvNet of their Appendix B.1 (and of the Pi-model, Laine & Aila 2017) for
# 32x32 images, 10 classes: isda_mm's ConvNet13 (BN, leaky ReLU 0.1, dropout
# 0.5), global average pooling, a linear classifier on 128 features.
# The Mean Teacher settings common to the paper's ConvNet runs (TensorFlow
# code, mean_teacher/model.py): consistency and EMA ramp-up over 40000
# iterations, EMA decay 0.99 during it and 0.999 after, Gaussian input noise
# 0.15 on each view, consistency on labeled images too, the supervised loss
# summed over labeled images and divided by the batch size. The consistency
# weight depends on the data set: each config sets it.
# ISDAMeanTeacher and ConvNet13 are registered by isda_mm: a config using
# this model imports it (custom_imports). SemiSupervisedHook moves the
# teacher after each optimizer step and writes the labeled split to
# <work_dir>/labeled_split.json; every semi-supervised model base adds it.
model = dict(
    type='ISDAMeanTeacher',
    backbone=dict(type='ConvNet13', drop_rate=0.5),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ),
    rampup_iters=40000,
    ema_decay=(0.99, 0.999),
    input_noise=0.15,
    consistency_on_labeled=True,
    supervised_normalizer='batch',
    predict_with='teacher')
custom_hooks = [dict(type='SemiSupervisedHook')]

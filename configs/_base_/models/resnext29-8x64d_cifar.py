# ResNeXt-29, 8x64d (Xie et al., CVPR 2017, Section 5.3) for 32x32 images,
# 10 classes: three stages of three bottleneck blocks with 8 groups, 64
# channels per group in the first stage, as the ISDA paper's CIFAR
# experiments use it; isda_mm's CIFARResNeXt (1024 features), global
# average pooling, a linear classifier. CIFARResNeXt is registered by
# isda_mm: a config using this model imports it (custom_imports).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='CIFARResNeXt', depth=29, groups=8, width_per_group=64),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))

# ResNet-32 of He et al. (2016, Section 4.2) for 32x32 images, 10 classes:
# isda_mm's CIFARResNet (3x3 stem with 16 channels, no max-pooling, stages of
# 16, 32 and 64 channels), global average pooling, a linear classifier.
# CIFARResNet is registered by isda_mm: a config using this model imports it
# (custom_imports).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CIFARResNet', depth=32),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))

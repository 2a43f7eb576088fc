# Wide-ResNet-28-10 of Zagoruyko & Komodakis (2016) with dropout 0.3, for
# 32x32 images, 10 classes: isda_mm's WideResNet (640 features), global
# average pooling, a linear classifier. WideResNet is registered by isda_mm:
# a config using this model imports it (custom_imports).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='WideResNet', depth=28, widen_factor=10, drop_rate=0.3),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=640,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))

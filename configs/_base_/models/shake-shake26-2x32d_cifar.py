# Shake-Shake (26, 2x32d) of Gastaldi (2017) for 32x32 images, 10 classes:
# three stages of four residual blocks whose two branches are mixed with
# random weights drawn per image (forward and backward apart), widths 32,
# 64 and 128; isda_mm's ShakeShakeResNet (128 features), global average
# pooling, a linear classifier. ShakeShakeResNet is registered by isda_mm:
# a config using this model imports it (custom_imports).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ShakeShakeResNet', depth=26, base_channels=32),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))

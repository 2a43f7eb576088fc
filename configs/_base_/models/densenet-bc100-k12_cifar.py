# DenseNet-BC-100 with growth rate 12 (Huang et al., CVPR 2017) for 32x32
# images, 10 classes: three dense blocks of 16 bottleneck layers and
# transitions with compression 0.5, as the ISDA paper's CIFAR experiments
# use it; isda_mm's CIFARDenseNet (342 features), global average pooling, a
# linear classifier. CIFARDenseNet is registered by isda_mm: a config using
# this model imports it (custom_imports).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CIFARDenseNet', depth=100, growth_rate=12),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=342,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))

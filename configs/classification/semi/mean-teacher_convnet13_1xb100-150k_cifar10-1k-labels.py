# Mean Teacher (Tarvainen & Valpola 2017) with the 13-layer ConvNet on
# CIFAR-10 with 1,000 labels, a cell of the ISDA paper's Table 6 (T-PAMI
# 2021). The reference's CIFAR-10 settings (TensorFlow code,
# experiments/cifar10_final_eval.py, which runs 1,000 labels): 150000
# iterations of 100 images, EMA decay and Adam beta2 0.999 from the start,
# consistency weight 100 * 1000 / 50000 = 2 for its mean squared error,
# which is 2 * 2 * (1 - 1/10) / 10^2 = 0.036 on the KL divergence (the
# reference's own KL scaling, model.py consistency_costs).
_base_ = [
    '../../_base_/models/semi-mean-teacher_convnet13.py',
    '../../_base_/datasets/semi-cifar10-1k-labels_bs100.py',
    '../../_base_/schedules/semi-mean-teacher_adam-150k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(consistency_weight=0.036, ema_decay=(0.999, 0.999))
param_scheduler = dict(betas2=(0.999, 0.999))

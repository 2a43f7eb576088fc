# Mean Teacher (Tarvainen & Valpola 2017) with the 13-layer ConvNet on SVHN
# with 500 labels, a cell of the ISDA paper's Table 6 (T-PAMI 2021). The
# reference's SVHN settings (TensorFlow code,
# experiments/svhn_final_eval.py, whose 500-label runs take its 1,000-label
# settings): 180000 iterations of 100 images with 1 labeled, consistency on
# unlabeled images only, EMA decay 0.99 then 0.999 and Adam beta2 0.99 then
# 0.999 (the defaults), consistency weight 1 for the mean squared error,
# i.e. 2 * (1 - 1/10) / 10^2 = 0.018 on the KL divergence.
_base_ = [
    '../../_base_/models/semi-mean-teacher_convnet13.py',
    '../../_base_/datasets/semi-svhn-500-labels_bs100.py',
    '../../_base_/schedules/semi-mean-teacher_adam-150k.py',
]

custom_imports = dict(imports=['isda_mm'], allow_failed_imports=False)

model = dict(consistency_weight=0.018, consistency_on_labeled=False)
param_scheduler = dict(total_iters=180000)
train_cfg = dict(max_iters=180000)

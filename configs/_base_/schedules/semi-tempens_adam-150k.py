# Laine & Aila's schedule for the Pi-model and temporal ensembling (ICLR
# 2017; their code, github.com/smlaine2/tempens, config.py and train.py):
# 300 epochs of batches of 100 over the 50,000 CIFAR images, 500 iterations
# an epoch, i.e. 150000 iterations; Adam with lr 0.003 reached by the
# ramp-up exp(-5 (1 - t/80 epochs)^2) = 40000 iterations and left by the
# ramp-down exp(-(e/2)^2 / 50) over the last 50 epochs, which is
# exp(-12.5 p^2) with p the ramp-down's phase, over 25000 iterations; beta1
# 0.9 -> 0.5 with the ramp-down (rampdown_beta1_target), beta2 0.999
# throughout, epsilon 1e-8, no weight decay. That is Mean Teacher's
# schedule (which took it from there) with beta2 0.999 from the start;
# MeanTeacherRampLR follows the ramps by iteration where train.py steps
# them once an epoch.
_base_ = './semi-mean-teacher_adam-150k.py'

param_scheduler = dict(betas2=(0.999, 0.999))

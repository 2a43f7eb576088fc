# Temporal ensembling + ISDA, CIFAR-10 with 4,000 labels: the baseline with
# the head's type changed to ISDALinearClsHead and the ISDA paper's CIFAR
# settings (full covariance, lambda0 = 0.5 growing by iteration). The
# supervised term becomes ISDA's bound; the consistency, its ISDA upper
# bound with the covariance of the target's arg-max class, from labeled
# statistics only.
_base_ = './temporal-ensembling_convnet13_1xb100-150k_cifar10-4k-labels.py'

model = dict(
    head=dict(
        type='ISDALinearClsHead',
        lambda0=0.5,
        covariance='full',
        lambda_by='iter'))

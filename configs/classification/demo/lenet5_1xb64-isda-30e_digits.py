_base_ = './lenet5_1xb64-30e_digits.py'

# ISDA: the stock head's type with the ISDA prefix, plus its settings.
model = dict(
    head=dict(type='ISDALinearClsHead', lambda0=0.5, covariance='full'))

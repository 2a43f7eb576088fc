# Temporal ensembling (Laine & Aila, ICLR 2017): the Pi-model of
# semi-pi-model_convnet13.py with the second pass replaced by each image's
# ensemble of its past predictions, Z <- a Z + (1 - a) softmax(z), used
# bias-corrected, Z / (1 - a^t). One view per image (the one-view dataset
# bases). From their code (github.com/smlaine2/tempens, config.py):
# ensemble momentum a = 0.6 (prediction_decay); the ensemble holds one row
# per training image, 50,000 for CIFAR. Noise, ramp-up and normalisation as
# the Pi-model's.
_base_ = './semi-pi-model_convnet13.py'

model = dict(
    type='ISDATemporalEnsembling', ensemble_momentum=0.6, num_images=50000)

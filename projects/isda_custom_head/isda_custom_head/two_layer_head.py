"""A head written by a user, with ISDA added in a few lines (README:
"ISDA in your own head")."""
import torch
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from torch import nn

from isda_mm.engine import isda_lambda


@MODELS.register_module()
class TwoLayerISDAHead(ClsHead):
    """A hidden layer, then the linear classifier whose input ISDA augments."""

    def __init__(self, num_classes, in_channels, hidden=64, lambda0=0.5,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU())
        self.fc = nn.Linear(hidden, num_classes)
        self.lambda0 = lambda0
        self.isda = MODELS.build(dict(type='ISDALoss', num_classes=num_classes,
                                      feature_dim=hidden, covariance='full'))

    def pre_logits(self, feats):
        return self.hidden(feats[-1])

    def forward(self, feats):
        return self.fc(self.pre_logits(feats))

    def loss(self, feats, data_samples, **kwargs):
        features = self.pre_logits(feats)
        labels = torch.cat([s.gt_label for s in data_samples])
        # update the statistics, then raise the logits by the ISDA term
        logits = self.isda.augment(features, self.fc(features), labels,
                                   self.fc.weight, isda_lambda(self.lambda0))
        return dict(loss=self.loss_module(logits, labels, avg_factor=len(
            labels)))

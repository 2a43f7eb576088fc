"""A tiny mmengine model whose head gets ISDA through the shared mechanism,
for tests of the engine layer (schedule, logging, DDP, resume)."""
import uuid

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from torch import nn
from torch.utils.data import Dataset

from isda_mm.engine import ISDAHeadMixin, register_isda_heads

NUM_CLASSES, IN_DIM, FEAT_DIM = 3, 5, 4


class TinyHead(nn.Module):
    """Stands for a toolkit's stock head."""

    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, feats):
        return self.fc(feats)

    def loss(self, feats, labels):
        return dict(loss_cls=F.cross_entropy(self(feats), labels))


class TinyISDAMixin(ISDAHeadMixin):
    """Stands for a toolkit adapter."""

    def __init__(self, *args, lambda0=0.5, covariance='full',
                 lambda_by='iter', sync_ranks=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_isda(self.fc.out_features, self.fc.in_features, lambda0,
                       covariance, lambda_by, sync_ranks=sync_ranks)

    def loss(self, feats, labels):
        aug = self.isda_augment(feats, self.fc(feats), labels,
                                self.fc.weight)
        return dict(loss_cls=F.cross_entropy(aug, labels),
                    **self.isda_log_vars())


if 'ISDATinyHead' not in MODELS:
    register_isda_heads(TinyISDAMixin, [TinyHead], MODELS)


@MODELS.register_module(force=True)
class TinyClassifier(BaseModel):

    def __init__(self, head):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(IN_DIM, FEAT_DIM), nn.ReLU())
        self.head = MODELS.build(head)

    def forward(self, inputs, labels, mode='tensor'):
        feats = self.backbone(inputs)
        if mode == 'loss':
            return self.head.loss(feats, labels)
        return self.head(feats)


class TinyDataset(Dataset):
    """Three separable Gaussian blobs, made in the test."""

    def __init__(self, size=24, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(size) % NUM_CLASSES
        self.inputs = torch.randn(size, IN_DIM, generator=g) + \
            self.labels[:, None].float()
        self.metainfo = dict(classes=('a', 'b', 'c'))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return dict(inputs=self.inputs[i], labels=self.labels[i])


def runner_cfg(work_dir, head=None, max_epochs=2, batch_size=4, **kwargs):
    """A complete Runner config around :class:`TinyClassifier`."""
    head = dict(type='ISDATinyHead', num_classes=NUM_CLASSES,
                in_channels=FEAT_DIM, lambda0=0.5) | (head or {})
    cfg = dict(
        model=dict(type='TinyClassifier', head=head),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=TinyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=batch_size,
            collate_fn=dict(type='default_collate'),
            num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=1)),
        randomness=dict(seed=0),
        default_scope='mmengine',
        log_level='WARNING',
        # Runners made in the same second would share a MessageHub.
        experiment_name=f'tiny_{uuid.uuid4().hex}')
    cfg.update(kwargs)
    return cfg

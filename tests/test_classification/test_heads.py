"""The twins of LinearClsHead, StackedLinearClsHead and
VisionTransformerClsHead beside their stock heads: predictions, the
lambda0=0 loss, accuracy, refused losses, checkpoints, the config check
and host syncs. Every twin's loss against the float64 reference is in
test_more_heads.py."""
import copy

import pytest
import torch
import torch.nn.functional as F
from host_syncs import training_step_syncs
from mmengine.runner import load_checkpoint, save_checkpoint
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import isda_mm  # noqa: F401

C, IN = 4, 6
STOCK = {
    'LinearClsHead': dict(num_classes=C, in_channels=IN),
    'StackedLinearClsHead': dict(num_classes=C, in_channels=IN,
                                 mid_channels=[5]),
    'VisionTransformerClsHead': dict(num_classes=C, in_channels=IN,
                                     hidden_dim=7),
}


def feats_for(head_type, n=10):
    if head_type == 'VisionTransformerClsHead':
        return ([torch.randn(n, IN, 2, 2), torch.randn(n, IN)], )
    return (torch.randn(n, IN), )


def samples(n=10):
    return [DataSample().set_gt_label(label)
            for label in torch.randint(C, (n, )).tolist()]


def build_pair(head_type, **isda):
    stock = MODELS.build(dict(type=head_type, **STOCK[head_type]))
    head = MODELS.build(dict(type='ISDA' + head_type, **STOCK[head_type],
                             **isda))
    head.load_state_dict({**head.state_dict(), **stock.state_dict()})
    return stock, head


@pytest.mark.parametrize('head_type', STOCK)
def test_predict_is_stock(head_type):
    stock, head = build_pair(head_type, lambda0=2.0)
    feats = feats_for(head_type)
    head.loss(feats, samples())  # statistics change nothing at test time
    stock.eval(), head.eval()
    for got, want in zip(head.predict(feats), stock.predict(feats)):
        assert torch.equal(got.pred_score, want.pred_score)


@pytest.mark.parametrize('head_type', STOCK)
@pytest.mark.parametrize('loss', [
    dict(type='CrossEntropyLoss', loss_weight=0.7,
         class_weight=[1.0, 2.0, 0.5, 1.5]),
    dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=2.0),
])
def test_lambda0_zero_gives_stock_loss(head_type, loss):
    stock, head = build_pair(head_type, lambda0=0.0)
    stock.loss_module = head.loss_module = MODELS.build(loss)
    feats, data = feats_for(head_type), samples()
    got = head.loss(feats, copy.deepcopy(data))
    want = stock.loss(feats, copy.deepcopy(data))
    assert torch.equal(got['loss'], want['loss'])
    assert got['isda_lambda'] == 0
    assert head.isda.estimator.count.sum() == len(data)


def test_accuracy_on_plain_logits():
    _, head = build_pair('LinearClsHead', lambda0=50.0, cal_acc=True)
    feats, data = feats_for('LinearClsHead'), samples()
    losses = head.loss(feats, data)
    labels = torch.cat([s.gt_label for s in data])
    plain = (head(feats).argmax(1) == labels).float().mean() * 100
    torch.testing.assert_close(losses['accuracy_top-1'][0].squeeze(), plain)


@pytest.mark.parametrize('loss, match', [
    (dict(type='CrossEntropyLoss', use_sigmoid=True),
     r'CrossEntropyLoss with use_sigmoid=True; use one of'),
    (dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='multi_label'),
     r'LabelSmoothLoss with use_sigmoid=True; use one of'),
    (dict(type='FocalLoss'), r'model.head.loss is FocalLoss'),
])
def test_unsupported_loss_fails_at_build(loss, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='ISDALinearClsHead', num_classes=C,
                          in_channels=IN, loss=loss))


def mixup(data, mu=0.7):
    """What mmpretrain's Mixup leaves in the samples: gt_label kept, a
    gt_score mixing each with another (one mu per batch)."""
    onehot = F.one_hot(torch.cat([s.gt_label for s in data]), C).float()
    scores = mu * onehot + (1 - mu) * onehot.roll(1, 0)
    for s, score in zip(data, scores):
        s.set_gt_score(score)
    return data


SOFT_LOSSES = [
    dict(type='CrossEntropyLoss'),
    dict(type='CrossEntropyLoss', use_soft=True, loss_weight=0.7,
         class_weight=[1.0, 2.0, 0.5, 1.5]),
    dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=2.0),
    dict(type='LabelSmoothLoss', label_smooth_val=0.2, mode='classy_vision',
         class_weight=[1.0, 2.0, 0.5, 1.5]),
    # not a distribution: the bound holds for any non-negative target
    dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='multi_label',
         use_sigmoid=False),
]


@pytest.mark.parametrize('loss', SOFT_LOSSES, ids=lambda c: c['type'])
def test_soft_targets_lambda0_zero_gives_stock_loss(loss):
    stock, head = build_pair('LinearClsHead', lambda0=0.0, loss=loss)
    stock.loss_module = MODELS.build(loss)
    feats, data = feats_for('LinearClsHead'), mixup(samples())
    got = head.loss(feats, copy.deepcopy(data))
    want = stock.loss(feats, copy.deepcopy(data))
    assert torch.equal(got['loss'], want['loss'])


def test_feature_width_mismatch_names_the_key():
    head = MODELS.build(dict(type='ISDALinearClsHead', num_classes=C,
                             in_channels=IN))
    with pytest.raises(ValueError,
                       match=r'set model.head.in_channels=9'):
        head.loss((torch.randn(4, 9), ), samples(4))


def test_bad_isda_setting():
    with pytest.raises(ValueError, match='lambda_by must be one of'):
        MODELS.build(dict(type='ISDALinearClsHead', num_classes=C,
                          in_channels=IN, lambda_by='step'))


def test_checkpoint_loads_into_stock_head(tmp_path):
    _, head = build_pair('LinearClsHead', lambda0=1.0)
    head.loss(feats_for('LinearClsHead'), samples())
    state = head.state_dict()
    assert {'isda.estimator.mean', 'isda.estimator.covariance',
            'isda.estimator.count'} <= set(state)
    save_checkpoint(state, str(tmp_path / 'isda.pth'))
    stock = MODELS.build(dict(type='LinearClsHead', **STOCK['LinearClsHead']))
    load_checkpoint(stock, str(tmp_path / 'isda.pth'))
    feats = feats_for('LinearClsHead')
    head.eval(), stock.eval()
    assert torch.equal(head(feats), stock(feats))


@pytest.mark.parametrize('where', ['model', 'top', 'train_cfg'])
def test_mixing_recipes_pass_the_config_check(where):
    """Mixup and CutMix, wherever a config puts them, are bounded: the
    check lets them through and still refuses a sigmoid loss beside them."""
    from mmengine.config import Config

    from isda_mm.classification import check_config
    augments = [dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.)]
    cfg = dict(model=dict(head=dict(
        type='ISDALinearClsHead',
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1))))
    if where == 'train_cfg':
        cfg['model']['train_cfg'] = dict(augments=augments)
    else:
        pre = dict(batch_augments=dict(augments=augments))
        (cfg['model'] if where == 'model' else cfg)['data_preprocessor'] = pre
    assert check_config(Config(cfg)) is None
    cfg['model']['head']['loss']['mode'] = 'multi_label'
    with pytest.raises(ValueError, match='model.head.loss.mode makes a '
                       'sigmoid cross-entropy'):
        check_config(Config(cfg))


@pytest.mark.parametrize('loss, key', [
    (dict(type='CrossEntropyLoss', use_sigmoid=True),
     'model.head.loss.use_sigmoid'),
    (dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='multi_label'),
     'model.head.loss.mode'),
])
def test_sigmoid_losses_refused_when_the_config_is_built(loss, key):
    from mmengine.config import Config

    from isda_mm.classification import check_config
    cfg = dict(model=dict(head=dict(type='ISDALinearClsHead', loss=loss)))
    with pytest.raises(ValueError, match=rf'{key} makes a sigmoid'):
        check_config(Config(cfg))
    cfg['model']['head']['type'] = 'LinearClsHead'
    check_config(Config(cfg))  # the stock head takes them


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
def test_accuracy_and_host_syncs_match_stock(covariance):
    stock, head = build_pair('LinearClsHead', lambda0=50.0, topk=(1, 2),
                             covariance=covariance, cal_acc=True)
    stock.cal_acc, stock.topk = True, (1, 2)
    feats, data = feats_for('LinearClsHead'), samples()
    syncs, losses = {}, {}
    for name, h in (('stock', stock), ('isda', head)):
        syncs[name], losses[name] = training_step_syncs(
            lambda: h.loss(feats, copy.deepcopy(data)))
    assert not torch.equal(losses['isda']['loss'], losses['stock']['loss'])
    for key in ('accuracy_top-1', 'accuracy_top-2'):  # one per threshold
        assert torch.equal(torch.stack(losses['isda'][key]),
                           torch.stack(losses['stock'][key]))
    assert syncs['isda'] - syncs['stock'] <= 2


@pytest.mark.parametrize('covariance, most', [('full', 2), ('diagonal', 2)])
def test_soft_target_host_syncs_do_not_grow_with_the_batch(covariance, most):
    """The statistics' classes and the soft bound's checks, each read on
    the host once: a fixed number of syncs, whatever the batch size."""
    stock, head = build_pair('LinearClsHead', lambda0=5.0,
                             covariance=covariance)
    for n in (10, 40):
        feats, data = feats_for('LinearClsHead', n), mixup(samples(n))
        syncs = [training_step_syncs(lambda: h.loss(feats, copy.deepcopy(
            data)))[0] for h in (stock, head)]
        assert syncs[1] - syncs[0] == most

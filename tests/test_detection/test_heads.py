"""The ISDA twins of mmdet's basic bbox heads: each against the float64
reference of ``det_twins`` (through ``loss_and_target``, and through
``loss`` with PISA-like label weights), under bfloat16 autocast, and
against the stock head; configurations ISDA cannot bound."""
import det_twins as twins
import pytest
import torch
from host_syncs import training_step_syncs
from mmdet.registry import MODELS

import isda_mm  # noqa: F401

C, IN, ROI = 3, 4, 3  # foreground classes; background is label C
BG = C
HEADS = {head: twins.SPECS[head].args for head in twins.BASIC}


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny tensors: threads cost more than they give."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build_pair(head_type, **isda):
    args = dict(HEADS[head_type], num_classes=C)
    stock = MODELS.build(dict(type=head_type, **args))
    head = MODELS.build(dict(type='ISDA' + head_type, **args, **isda))
    head.load_state_dict({**head.state_dict(), **stock.state_dict()})
    return stock, head


def make_rois(n=12, seed=0):
    """RoI features and the targets ``get_targets`` would give them."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, IN, ROI, ROI, generator=gen)
    labels = torch.arange(n) % (C + 1)  # every class and background
    weights = torch.ones(n)
    weights[-2:] = 0  # ignored by the sampler
    targets = torch.randn(n, 4, generator=gen)
    target_weights = (labels < BG).float()[:, None].expand(n, 4)
    rois = torch.cat([torch.zeros(n, 1), torch.rand(n, 4, generator=gen)],
                     1)
    return feats, rois, labels, weights, targets, target_weights


def head_loss(head, feats, rois, labels, *targets):
    # Double-Head takes separate RoI features for its two branches.
    double = 'DoubleConvFCBBoxHead' in type(head).__name__
    cls_score, bbox_pred = head(feats, feats) if double else head(feats)
    return head.loss(cls_score, bbox_pred, rois, labels, *targets)


@pytest.mark.parametrize('head_type', HEADS)
def test_lambda0_zero_gives_stock_loss(head_type):
    stock, head = build_pair(head_type, lambda0=0.0)
    feats, rois, *targets = make_rois()
    got = head_loss(head, feats, rois, *targets)
    want = head_loss(stock, feats, rois, *targets)
    for key in ('loss_cls', 'loss_bbox', 'acc'):
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    assert got['isda_lambda'] == 0


def zero_some_weights(labels, weights):
    """PISA-like label weights: some RoIs ignored, the others reweighted."""
    weights = weights * torch.linspace(0.5, 1.5, len(weights),
                                       dtype=weights.dtype)
    weights[1::4] = 0
    return weights


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('head_type, background, weights', [
    *(pytest.param(h, 'exclude', None, id=h) for h in twins.BASIC),
    pytest.param('Shared2FCBBoxHead', 'augment', None,
                 id='Shared2FCBBoxHead-augment'),
    pytest.param('Shared2FCBBoxHead', 'exclude', zero_some_weights,
                 id='Shared2FCBBoxHead-pisa'),
    pytest.param('Shared2FCBBoxHead', 'augment', zero_some_weights,
                 id='Shared2FCBBoxHead-pisa-augment')])
def test_loss_matches_reference(head_type, background, weights, covariance):
    twins.check_loss_matches_reference(head_type, covariance, background,
                                       weights)


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('head_type', twins.BASIC)
def test_autocast_forward_backward(head_type, covariance):
    twins.check_autocast_forward_backward(head_type, covariance)


def test_every_twin_is_checked_against_the_reference():
    # This module checks BASIC, test_more_heads.py the others.
    assert twins.registered_twins() == set(twins.SPECS) == {
        *twins.BASIC, *twins.MORE}


def test_backward_reaches_every_parameter():
    _, head = build_pair('Shared2FCBBoxHead', lambda0=1.0, covariance='full',
                         background='augment')
    feats, rois, *targets = make_rois()
    losses = head_loss(head, feats, rois, *targets)
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        assert torch.isfinite(param.grad).all(), name


def test_eval_predicts_as_stock_and_keeps_nothing():
    stock, head = build_pair('Shared2FCBBoxHead', lambda0=7.5)
    head_loss(head, *make_rois())
    stock.eval(), head.eval()
    feats = make_rois(seed=1)[0]
    for got, want in zip(head(feats), stock(feats)):
        assert torch.equal(got, want)
    assert head._isda_seen is None


def test_foreign_logits_are_refused():
    _, head = build_pair('Shared2FCBBoxHead')
    feats, rois, *targets = make_rois()
    cls_score, bbox_pred = head(feats)
    with pytest.raises(RuntimeError, match='not the output of its last'):
        head.loss(cls_score.clone(), bbox_pred, rois, *targets)


@pytest.mark.parametrize('change, match', [
    (dict(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True)),
     'use_sigmoid'),
    (dict(loss_cls=dict(type='FocalLoss')), 'loss_cls is FocalLoss'),
    (dict(cls_predictor_cfg=dict(type='NormedLinear')),
     "cls_predictor_cfg=dict\\(type='Linear'\\)"),
    (dict(background='ignore'), 'background must be one of'),
    (dict(covariance='low-rank'), 'covariance must be one of'),
])
def test_bad_config_fails_at_build(change, match):
    cfg = dict(type='ISDAShared2FCBBoxHead', num_classes=C,
               **HEADS['Shared2FCBBoxHead'])
    with pytest.raises(ValueError, match=match):
        MODELS.build({**cfg, **change})


def test_one_stage_head_fails_at_build():
    with pytest.raises(ValueError, match='dense .* sigmoid or focal'):
        MODELS.build(dict(type='ISDARetinaHead', num_classes=C,
                          in_channels=IN))


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
def test_accuracy_and_host_syncs_match_stock(covariance):
    stock, head = build_pair('Shared2FCBBoxHead', lambda0=50.0,
                             covariance=covariance)
    feats, rois, *targets = make_rois()
    syncs, losses = {}, {}
    for name, h in (('stock', stock), ('isda', head)):
        syncs[name], losses[name] = training_step_syncs(
            lambda: head_loss(h, feats, rois, *targets))
    assert not torch.equal(losses['isda']['loss_cls'],
                           losses['stock']['loss_cls'])
    for key in ('acc', 'loss_bbox'):
        assert torch.equal(losses['isda'][key], losses['stock'][key])
    assert syncs['isda'] - syncs['stock'] <= 2

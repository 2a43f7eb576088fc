"""The ISDA twins of the mmseg heads whose forward ends in
``return self.cls_seg(x)``: each against the float64 reference
(``seg_twins``), under bfloat16 autocast, and against the stock head."""
import copy

import pytest
import torch
from host_syncs import training_step_syncs
from mmseg.registry import MODELS
from seg_twins import (
    IGNORE,
    MORE,
    PLAIN,
    SPECS,
    VARIANTS,
    build_pair,
    check_autocast_forward_backward,
    check_loss_matches_reference,
    head_loss,
    labels_at,
    make_batch,
    registered_twins,
)

from isda_mm.segmentation import SUPPORTED_HEADS

C = 4
# The heads the stock-equivalence tests walk: one per structure.
STRUCTURES = ('FCNHead', 'ASPPHead', 'PSPHead', 'DepthwiseSeparableASPPHead',
              'SegformerHead')


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny tensors: threads cost more than they give."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('head_type, variant', [
    *(pytest.param(head, None, id=head) for head in PLAIN),
    *(pytest.param('FCNHead', variant, id=f'FCNHead-{variant}')
      for variant in VARIANTS)])
def test_loss_matches_reference(head_type, variant, covariance):
    check_loss_matches_reference(head_type, covariance, variant)


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('head_type', PLAIN)
def test_autocast_forward_backward(head_type, covariance):
    check_autocast_forward_backward(head_type, covariance)


def test_every_twin_is_checked_against_the_reference():
    # This module checks PLAIN, test_more_heads.py the others.
    assert registered_twins() == set(SPECS) == set(PLAIN) | set(MORE)
    assert not set(PLAIN) & set(MORE)


@pytest.mark.parametrize('head_type', STRUCTURES)
def test_lambda0_zero_gives_stock_loss_and_counts_pixels(head_type):
    stock, head = build_pair(head_type, dtype=torch.float32, lambda0=0.0)
    batch = make_batch(head_type, dtype=torch.float32)
    got = head_loss(head, head_type, batch)
    want = head_loss(stock, head_type, batch)
    assert torch.equal(got['loss_ce'], want['loss_ce'])
    torch.testing.assert_close(got['acc_seg'], want['acc_seg'])
    # Every non-ignored pixel at feature resolution, per class.
    labels = labels_at(batch[1], head(*batch[0]))
    expected = torch.bincount(labels[labels != IGNORE], minlength=C)
    assert torch.equal(head.isda.estimator.count, expected)


@pytest.mark.parametrize('head_type', STRUCTURES)
def test_predict_is_stock(head_type):
    stock, head = build_pair(head_type, dtype=torch.float32, lambda0=3.0)
    batch = make_batch(head_type, dtype=torch.float32)
    head_loss(head, head_type, batch)
    stock.eval(), head.eval()
    assert torch.equal(head(*batch[0]), stock(*batch[0]))


@pytest.mark.parametrize('change, match', [
    (dict(out_channels=1, num_classes=2), r'out_channels=1 makes a sigmoid'),
    (dict(loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True)),
     r'CrossEntropyLoss with use_sigmoid or use_mask'),
    (dict(loss_decode=dict(type='DiceLoss')), r'loss_decode holds DiceLoss'),
])
def test_heads_isda_cannot_bound_fail_at_build(change, match):
    args = dict(SPECS['FCNHead'].args, num_classes=C) | change
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='ISDAFCNHead', **args))


@pytest.mark.parametrize('head_type', ['FCNHead', 'SegformerHead'])
@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
def test_accuracy_and_host_syncs_match_stock(head_type, covariance):
    stock, head = build_pair(head_type, dtype=torch.float32, lambda0=50.0,
                             covariance=covariance)
    batch = make_batch(head_type, dtype=torch.float32)
    syncs, losses = {}, {}
    for name, h in (('stock', stock), ('isda', head)):
        syncs[name], losses[name] = training_step_syncs(
            lambda: h.loss(*batch[0], copy.deepcopy(batch[1]), None))
    assert torch.equal(losses['isda']['acc_seg'], losses['stock']['acc_seg'])
    assert syncs['isda'] - syncs['stock'] <= 2


def test_supported_heads_score_with_the_base_loss_by_feat():
    # ISDADecodeHeadMixin re-implements BaseDecodeHead.loss_by_feat's
    # scoring (to measure acc_seg once, on the plain logits): a head with
    # its own loss_by_feat belongs to ISDAOwnScoringHeadMixin.
    from mmseg.models import decode_heads
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    for name in SUPPORTED_HEADS:
        head = getattr(decode_heads, name)
        assert head.loss_by_feat is BaseDecodeHead.loss_by_feat, name

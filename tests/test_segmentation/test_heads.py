import copy

import pytest
import torch
import torch.nn.functional as F
from host_syncs import training_step_syncs
from isda_reference import reference_augment, reference_statistics
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import isda_mm  # noqa: F401

C, IN, IGNORE = 4, 8, 255
HEADS = {
    'FCNHead': dict(in_channels=IN, channels=6, num_convs=1),
    'ASPPHead': dict(in_channels=IN, channels=6, dilations=(1, 2)),
    'PSPHead': dict(in_channels=IN, channels=6, pool_scales=(1, 2)),
    'DepthwiseSeparableASPPHead': dict(
        in_channels=IN, channels=6, dilations=(1, 2), c1_in_channels=IN,
        c1_channels=4, in_index=1),
    'SegformerHead': dict(in_channels=[IN, IN], in_index=[0, 1],
                          channels=6),
}


def make_batch(n=2, size=8, ignore=True):
    inputs = (torch.randn(n, IN, size, size), torch.randn(n, IN, size, size))
    samples = []
    for _ in range(n):
        labels = torch.randint(C, (1, 4 * size, 4 * size))
        if ignore:
            labels[:, :5] = IGNORE
        sample = SegDataSample(gt_sem_seg=PixelData(data=labels))
        sample.set_metainfo(dict(img_shape=(4 * size, 4 * size),
                                 pad_shape=(4 * size, 4 * size)))
        samples.append(sample)
    return inputs, samples


def build_pair(head_type, **isda):
    args = dict(HEADS[head_type], num_classes=C, dropout_ratio=0)
    stock = MODELS.build(dict(type=head_type, **args))
    head = MODELS.build(dict(type='ISDA' + head_type, **args, **isda))
    head.load_state_dict({**head.state_dict(), **stock.state_dict()})
    return stock, head


def small_labels(samples, size):
    labels = torch.stack([s.gt_sem_seg.data for s in samples]).float()
    return F.interpolate(labels, size=size, mode='nearest').long()


@pytest.mark.parametrize('head_type', HEADS)
def test_lambda0_zero_gives_stock_loss_and_counts_pixels(head_type):
    stock, head = build_pair(head_type, lambda0=0.0)
    inputs, samples = make_batch()
    got = head.loss(inputs, copy.deepcopy(samples), None)
    want = stock.loss(inputs, copy.deepcopy(samples), None)
    assert torch.equal(got['loss_ce'], want['loss_ce'])
    torch.testing.assert_close(got['acc_seg'], want['acc_seg'])
    # Every non-ignored pixel at feature resolution, per class.
    labels = small_labels(samples, head(inputs).shape[2:]).flatten()
    expected = torch.bincount(labels[labels != IGNORE], minlength=C)
    assert torch.equal(head.isda.estimator.count, expected)


@pytest.mark.parametrize('covariance', ['diagonal', 'full'])
def test_loss_scores_augmented_pixels(covariance):
    _, head = build_pair('FCNHead', lambda0=2.0, covariance=covariance)
    head = head.double()
    inputs, samples = make_batch(n=1, size=4)
    inputs = tuple(x.double() for x in inputs)
    seen = {}
    head.conv_seg.register_forward_hook(
        lambda m, a, o: seen.update(features=a[0], logits=o))
    losses = head.loss(inputs, samples, None)
    features, logits = seen['features'], seen['logits']
    labels = small_labels(samples, logits.shape[2:]).flatten()
    flat_f = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    # Statistics: the non-ignored pixels only.
    _, cov, count = reference_statistics([(flat_f, labels)], C, IGNORE,
                                         covariance == 'full')
    assert torch.equal(head.isda.estimator.count, count)
    torch.testing.assert_close(head.isda.estimator.covariance, cov)
    weight = head.conv_seg.weight.flatten(1)
    ref = reference_augment(logits.permute(0, 2, 3, 1).reshape(-1, C),
                            labels, weight, cov, 2.0, IGNORE)
    ref = ref.reshape(1, *logits.shape[2:], C).permute(0, 3, 1, 2)
    want = head.loss_by_feat(ref, samples)['loss_ce']
    torch.testing.assert_close(losses['loss_ce'], want)
    assert losses['isda_lambda'] == 2.0


@pytest.mark.parametrize('extra, ignore', [
    (dict(sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=20)),
     True),
    # mmseg 1.2.2's mean CE with class weights indexes them by the ignore
    # label (the stock head fails too), hence no ignored pixels here.
    (dict(loss_decode=dict(type='CrossEntropyLoss',
                           class_weight=[1.0, 2.0, 0.5, 1.0])), False),
])
def test_sampler_and_class_weights(extra, ignore):
    _, head = build_pair('FCNHead', lambda0=1.0, **extra)
    inputs, samples = make_batch(ignore=ignore)
    losses = head.loss(inputs, samples, None)
    assert torch.isfinite(losses['loss_ce'])
    losses['loss_ce'].backward()
    assert torch.isfinite(head.conv_seg.weight.grad).all()


@pytest.mark.parametrize('head_type', HEADS)
def test_predict_is_stock(head_type):
    stock, head = build_pair(head_type, lambda0=3.0)
    inputs, samples = make_batch()
    head.loss(inputs, samples, None)
    stock.eval(), head.eval()
    assert torch.equal(head(inputs), stock(inputs))


@pytest.mark.parametrize('change, match', [
    (dict(out_channels=1, num_classes=2), r'out_channels=1 makes a sigmoid'),
    (dict(loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True)),
     r'CrossEntropyLoss with use_sigmoid or use_mask'),
    (dict(loss_decode=dict(type='DiceLoss')), r'loss_decode holds DiceLoss'),
])
def test_heads_isda_cannot_bound_fail_at_build(change, match):
    args = dict(HEADS['FCNHead'], num_classes=C) | change
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='ISDAFCNHead', **args))


@pytest.mark.parametrize('head_type', ['FCNHead', 'SegformerHead'])
@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
def test_accuracy_and_host_syncs_match_stock(head_type, covariance):
    stock, head = build_pair(head_type, lambda0=50.0, covariance=covariance)
    inputs, samples = make_batch()
    syncs, losses = {}, {}
    for name, h in (('stock', stock), ('isda', head)):
        syncs[name], losses[name] = training_step_syncs(
            lambda: h.loss(inputs, copy.deepcopy(samples), None))
    assert not torch.equal(losses['isda']['loss_ce'],
                           losses['stock']['loss_ce'])
    assert torch.equal(losses['isda']['acc_seg'], losses['stock']['acc_seg'])
    assert syncs['isda'] - syncs['stock'] <= 2


def test_supported_heads_score_with_the_base_loss_by_feat():
    # ISDADecodeHeadMixin re-implements BaseDecodeHead.loss_by_feat's
    # scoring (to measure acc_seg once, on the plain logits): a head with
    # its own loss_by_feat belongs to ISDAOwnScoringHeadMixin.
    from mmseg.models import decode_heads
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead

    from isda_mm.segmentation.heads import SUPPORTED_HEADS
    for name in SUPPORTED_HEADS:
        head = getattr(decode_heads, name)
        assert head.loss_by_feat is BaseDecodeHead.loss_by_feat, name

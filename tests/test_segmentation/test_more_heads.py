"""ISDA twins of the heads beyond ``return self.cls_seg(x)``: OCRNet's and
PointRend's cascade stages, EncNet, DANet, DDRNet and PIDNet (each against
the float64 reference of ``seg_twins``, under bfloat16 autocast, and
against the stock head on the same inputs and weights); loss lists;
refusals."""
import copy
from pathlib import Path

import mmseg
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData
from mmseg.models import decode_heads
from mmseg.models.decode_heads.point_head import point_sample
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from seg_twins import (
    MORE,
    check_autocast_forward_backward,
    check_loss_matches_reference,
)

import isda_mm  # noqa: F401
from isda_mm.segmentation import (
    OWN_SCORING_HEADS,
    REFUSED_HEADS,
    SUPPORTED_HEADS,
    ISDADecodeHeadMixin,
)

C, IN, IGNORE, N, SIZE = 4, 8, 255, 2, 8
OHEM = dict(type='OhemCrossEntropy', thres=0.9, min_kept=40)
POINT_TRAIN = ConfigDict(num_points=24, oversample_ratio=2,
                         importance_sample_ratio=0.5)
POINT_TEST = ConfigDict(subdivision_steps=1, subdivision_num_points=16,
                        scale_factor=2)
# Head -> (arguments, loss arguments, predict arguments before the image
# metas and test_cfg); ``f`` are three feature maps (IN / 2, IN, IN / 2
# channels), ``p`` a previous stage's logits, ``s`` the samples.
HEADS = {
    'OCRHead': (dict(in_channels=IN, in_index=1, channels=6, ocr_channels=4),
                lambda f, p, s: (f, p, s, None), lambda f, p: ((f, p), None)),
    'EncHead': (dict(in_channels=[IN // 2, IN], in_index=[0, 1], channels=6,
                     num_codes=4),
                lambda f, p, s: (f, s, None), lambda f, p: ((f,), None)),
    'DAHead': (dict(in_channels=IN, in_index=1, channels=6, pam_channels=4),
               lambda f, p, s: (f, s, None), lambda f, p: ((f,), None)),
    'PointHead': (dict(in_channels=[IN], in_index=[1], channels=6,
                       num_fcs=2),
                  lambda f, p, s: (f, p, s, POINT_TRAIN),
                  lambda f, p: ((f, p), POINT_TEST)),
    'DDRHead': (dict(in_channels=IN, channels=6,
                     loss_decode=[OHEM, dict(OHEM, loss_weight=0.4)]),
                lambda f, p, s: (f[:2], s, None),
                lambda f, p: ((f[1],), None)),
    'PIDHead': (dict(in_channels=IN, channels=6, loss_decode=[
        dict(type='CrossEntropyLoss', loss_weight=0.4), OHEM,
        dict(type='BoundaryLoss', loss_weight=20.0), OHEM]),
                lambda f, p, s: (f, s, None),
                lambda f, p: ((f[1],), None)),
}


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """These tensors are tiny: on a busy machine, waking (and spinning)
    intra-op threads costs ten times the work itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('head_type', MORE)
def test_loss_matches_reference(head_type, covariance):
    check_loss_matches_reference(head_type, covariance)


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('head_type', MORE)
def test_autocast_forward_backward(head_type, covariance):
    check_autocast_forward_backward(head_type, covariance)


def make_batch():
    feats = (torch.randn(N, IN // 2, SIZE, SIZE),
             torch.randn(N, IN, SIZE, SIZE),
             torch.randn(N, IN // 2, SIZE, SIZE))
    prev = torch.randn(N, C, SIZE, SIZE)
    samples = []
    for _ in range(N):
        labels = torch.randint(C, (1, 4 * SIZE, 4 * SIZE))
        labels[:, :5] = IGNORE
        sample = SegDataSample(gt_sem_seg=PixelData(data=labels),
                               gt_edge_map=PixelData(data=(
                                   torch.rand(1, 4 * SIZE, 4 * SIZE) > 0.8
                               ).long()))
        sample.set_metainfo(dict(img_shape=(4 * SIZE, 4 * SIZE),
                                 pad_shape=(4 * SIZE, 4 * SIZE)))
        samples.append(sample)
    return feats, prev, samples


def build_pair(head_type, **isda):
    args = dict(HEADS[head_type][0], num_classes=C, dropout_ratio=0)
    stock = MODELS.build(dict(type=head_type, **args))
    if head_type == 'PIDHead':  # every pixel on a boundary: loss_sem_bd > 0
        torch.nn.init.constant_(stock.d_cls_seg.bias, 3.0)
    head = MODELS.build(dict(type='ISDA' + head_type, **args, **isda))
    head.load_state_dict({**head.state_dict(), **stock.state_dict()})
    return stock, head


def losses_of(head_type, head, batch):
    """``head.loss`` on the batch (PointHead's random points seeded), and
    the labels at the samples its classifiers score, flattened."""
    feats, prev, samples = batch
    points = {}
    if head_type == 'PointHead':
        sample_points = head.get_points_train
        head.get_points_train = lambda *a, **k: points.setdefault(
            'p', sample_points(*a, **k))
    torch.manual_seed(0)
    losses = head.loss(*HEADS[head_type][1](feats, prev,
                                            copy.deepcopy(samples)))
    labels = torch.stack([s.gt_sem_seg.data for s in samples]).float()
    if points:
        del head.get_points_train
        labels = point_sample(labels, points['p'], mode='nearest')
    else:  # every head here classifies SIZE x SIZE maps
        labels = F.interpolate(labels, size=SIZE, mode='nearest')
    return losses, labels.long().flatten()


def estimators(head):
    main, *branches = head.isda_classifiers
    return {main: head.isda.estimator,
            **{b: head.isda_branches[b].estimator for b in branches}}


@pytest.mark.parametrize('head_type', HEADS)
def test_lambda0_zero_gives_stock_losses_and_counts_samples(head_type):
    stock, head = build_pair(head_type, lambda0=0.0)
    batch = make_batch()
    got, labels = losses_of(head_type, head, batch)
    want, _ = losses_of(head_type, stock, batch)
    assert set(want) <= set(got)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    # Every classifier counts each non-ignored pixel (point) once.
    stats = estimators(head)
    assert list(stats) == list(OWN_SCORING_HEADS.get(head_type, ['conv_seg']))
    expected = torch.bincount(labels[labels != IGNORE], minlength=C)
    for name, estimator in stats.items():
        assert torch.equal(estimator.count, expected), name
    if len(stats) > 1:  # each classifier has its own features
        means = [s.mean for s in stats.values()]
        assert not torch.equal(means[0], means[1])


@pytest.mark.parametrize('head_type', HEADS)
def test_predict_and_checkpoint_are_stock(head_type, tmp_path):
    stock, head = build_pair(head_type, lambda0=3.0)
    batch = make_batch()
    for h in (stock, head):  # same batch-norm statistics
        losses_of(head_type, h, batch)
    extra = set(head.state_dict()) - set(stock.state_dict())
    assert set(stock.state_dict()) <= set(head.state_dict())
    assert {k.split('.estimator.')[0] for k in extra} == {'isda'} | {
        f'isda_branches.{b}' for b in list(head.isda_classifiers)[1:]}
    torch.save({'state_dict': head.state_dict()}, tmp_path / 'head.pth')
    fresh = MODELS.build(dict(type=head_type, **HEADS[head_type][0],
                              num_classes=C, dropout_ratio=0))
    load_checkpoint(fresh, str(tmp_path / 'head.pth'))
    feats, prev, samples = batch
    args, test_cfg = HEADS[head_type][2](feats, prev)
    metas = [s.metainfo for s in samples]
    outputs = []
    for h in (stock, head, fresh):
        h.eval()
        outputs.append(h.predict(*args, metas, test_cfg))
    assert torch.equal(outputs[1], outputs[0])
    assert torch.equal(outputs[2], outputs[0])


# Tiny models, one per structure; every decode head is an ISDA twin.
ISDA = dict(num_classes=C, lambda0=2.0)
BACKBONE = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=4,
                out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'))
FCN = dict(ISDA, type='ISDAFCNHead', in_channels=16, in_index=2, channels=8,
           num_convs=1, concat_input=False)
TINY = {
    'enc': dict(type='EncoderDecoder', backbone=BACKBONE, decode_head=dict(
        ISDA, type='ISDAEncHead', in_channels=[16, 32], in_index=(2, 3),
        channels=8, num_codes=4)),
    'da': dict(type='EncoderDecoder', backbone=BACKBONE, decode_head=dict(
        ISDA, type='ISDADAHead', in_channels=32, in_index=3, channels=8,
        pam_channels=4), auxiliary_head=FCN),
    'ocr': dict(type='CascadeEncoderDecoder', num_stages=2,
                backbone=BACKBONE, decode_head=[FCN, dict(
                    ISDA, type='ISDAOCRHead', in_channels=16, in_index=2,
                    channels=8, ocr_channels=4)]),
    'point': dict(
        type='CascadeEncoderDecoder', num_stages=2, backbone=BACKBONE,
        neck=dict(type='FPN', in_channels=[4, 8, 16, 32], out_channels=8,
                  num_outs=4),
        decode_head=[
            dict(ISDA, type='ISDAFPNHead', in_channels=[8] * 4,
                 in_index=[0, 1, 2, 3], feature_strides=[4, 8, 16, 32],
                 channels=8, dropout_ratio=-1),
            dict(ISDA, type='ISDAPointHead', in_channels=[8], in_index=[0],
                 channels=8, num_fcs=2, dropout_ratio=-1)],
        train_cfg=dict(num_points=64, oversample_ratio=3,
                       importance_sample_ratio=0.75)),
    'ddr': dict(type='EncoderDecoder', backbone=dict(
        type='DDRNet', channels=8, ppm_channels=8), decode_head=dict(
            ISDA, type='ISDADDRHead', in_channels=32, channels=8,
            dropout_ratio=0., loss_decode=HEADS['DDRHead'][0]['loss_decode'])),
    'pid': dict(type='EncoderDecoder', backbone=dict(
        type='PIDNet', channels=8, ppm_channels=8, num_stem_blocks=1,
        num_branch_blocks=1), decode_head=dict(
            ISDA, type='ISDAPIDHead', in_channels=32, channels=8,
            loss_decode=HEADS['PIDHead'][0]['loss_decode'])),
}


@pytest.mark.parametrize('name', TINY)
def test_tiny_model_trains_a_step(name):
    init_default_scope('mmseg')
    model = MODELS.build(ConfigDict(
        TINY[name], test_cfg=dict(mode='whole'),
        train_cfg=TINY[name].get('train_cfg', {}),
        data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 64),
                               mean=[128] * 3, std=[64] * 3)))
    data = dict(inputs=[], data_samples=[])
    for _ in range(2):
        labels = torch.randint(C, (1, 64, 64))
        labels[:, :8] = IGNORE
        edges = (torch.rand(1, 64, 64) > 0.8).long()  # PIDNet's
        sample = SegDataSample(gt_sem_seg=PixelData(data=labels),
                               gt_edge_map=PixelData(data=edges))
        sample.set_metainfo(dict(img_shape=(64, 64), pad_shape=(64, 64)))
        data['inputs'].append(torch.randint(256, (3, 64, 64),
                                            dtype=torch.uint8))
        data['data_samples'].append(sample)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(data, wrapper)
    assert torch.isfinite(log_vars['loss'])
    heads = [m for m in model.modules()
             if isinstance(m, ISDADecodeHeadMixin)]
    assert len(heads) == 1 + (name in ('da', 'ocr', 'point'))
    for head in heads:
        for stats in estimators(head).values():
            assert stats.count.sum() > 0


# The zoo's loss lists: UNet's CE + Dice heads (FCN, PSP, ASPP; 12 configs).
ZOO_LOSS_LISTS = sorted(
    (Path(mmseg.__file__).parent / '.mim' / 'configs' / 'unet').glob(
        '*ce-1.0-dice-3.0*.py'))


@pytest.mark.parametrize('path', ZOO_LOSS_LISTS, ids=lambda p: p.stem)
def test_zoo_loss_lists_augment_the_cross_entropy_only(path):
    init_default_scope('mmseg')
    cfg = Config.fromfile(path).model.decode_head
    cfg.update(norm_cfg=dict(type='BN'), dropout_ratio=0)  # no process group
    stock = MODELS.build(cfg)
    cfg.type = 'ISDA' + cfg.type
    twin = MODELS.build(cfg)
    twin.load_state_dict(stock.state_dict(), strict=False)
    feats = (torch.randn(N, cfg.in_channels, SIZE, SIZE),) * 5
    samples = make_batch()[2]
    for sample in samples:  # the zoo's retinal vessels: two classes
        sample.gt_sem_seg.data %= cfg.num_classes
    got = twin.loss(feats, copy.deepcopy(samples), None)
    want = stock.loss(feats, copy.deepcopy(samples), None)
    assert torch.equal(got['loss_dice'], want['loss_dice'])
    assert torch.equal(got['acc_seg'], want['acc_seg'])
    assert got['loss_ce'] > want['loss_ce']


@pytest.mark.parametrize('head_type, loss, match', [
    ('FCNHead', dict(type='DiceLoss'), r'loss_decode holds DiceLoss'),
    ('FCNHead', [dict(type='CrossEntropyLoss', use_sigmoid=True),
                 dict(type='DiceLoss')],
     r'holds CrossEntropyLoss with use_sigmoid or use_mask, DiceLoss'),
    ('DAHead', [dict(type='CrossEntropyLoss'), dict(type='DiceLoss')],
     r'DAHead hands its logits to every loss .* holds DiceLoss'),
    ('DDRHead', [OHEM, dict(type='LovaszLoss', reduction='none')],
     r'holds LovaszLoss'),
])
def test_losses_isda_cannot_bound_fail_at_build(head_type, loss, match):
    args = dict(HEADS.get(head_type, (dict(in_channels=IN, channels=6),))[0],
                num_classes=C, loss_decode=loss)
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='ISDA' + head_type, **args))


def test_every_mmseg_head_is_supported_or_refused():
    assert set(decode_heads.__all__) == (
        set(SUPPORTED_HEADS) | set(OWN_SCORING_HEADS) | set(REFUSED_HEADS))


@pytest.mark.parametrize('head_type', REFUSED_HEADS)
def test_refused_heads_say_why_at_build(head_type):
    with pytest.raises(ValueError) as error:
        MODELS.build(dict(type='ISDA' + head_type, num_classes=C))
    message = str(error.value)
    assert message.startswith(f'ISDA{head_type}: ')
    assert 'ISDA' in message.split(': ', 1)[1]  # the reason and the remedy
    assert message.count('; ') == 1
    assert '; use ' in message or '; keep ' in message

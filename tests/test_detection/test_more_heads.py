"""SCNetBBoxHead and SABLHead against the float64 reference of
``det_twins`` and under bfloat16 autocast, then in tiny detectors built
from dicts (SCNet and SABL Faster R-CNN, 8-channel ResNet-18, 64-pixel
images); and the reason every other mmdet head gives for having no ISDA
twin."""
import contextlib
import copy
import re
from pathlib import Path

import det_twins as twins
import mmdet
import numpy as np
import pytest
import torch
from capture import layer_inputs
from isda_reference import reference_statistics
from mmdet.models import dense_heads
from mmdet.models.roi_heads import bbox_heads, mask_heads
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config, ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint, save_checkpoint
from mmengine.structures import InstanceData

import isda_mm  # noqa: F401
from isda_mm.detection import REFUSED_HEADS, SUPPORTED_HEADS

C, SIZE, WIDTH = 3, 64, 8  # classes (background is C), image, FPN width
ROI = dict(type='SingleRoIExtractor', out_channels=WIDTH,
           featmap_strides=[4, 8, 16, 32],
           roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0))
RCNN_TRAIN = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                  min_pos_iou=0.5, ignore_iof_thr=-1),
    sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25,
                 neg_pos_ub=-1, add_gt_as_proposals=True),
    mask_size=28, pos_weight=-1, debug=False)
SABL = dict(type='SABLHead', num_classes=C, cls_in_channels=WIDTH,
            reg_in_channels=WIDTH, cls_out_channels=16,
            reg_offset_out_channels=WIDTH, reg_cls_out_channels=WIDTH)
SCNET = dict(type='SCNetBBoxHead', num_classes=C, num_shared_fcs=2,
             in_channels=WIDTH, fc_out_channels=16, roi_feat_size=7,
             reg_class_agnostic=True,
             bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                             target_stds=[0.1, 0.1, 0.2, 0.2]))
ROI_HEADS = {
    'SABLHead': dict(type='StandardRoIHead', bbox_roi_extractor=ROI,
                     bbox_head=SABL),
    # SCNet as in the zoo, without the semantic branch (needs stuff maps).
    'SCNetBBoxHead': dict(
        type='SCNetRoIHead', num_stages=2, stage_loss_weights=[1, 0.5],
        bbox_roi_extractor=ROI, bbox_head=[SCNET, SCNET],
        mask_roi_extractor=dict(ROI, roi_layer=dict(
            type='RoIAlign', output_size=14, sampling_ratio=0)),
        mask_head=dict(type='SCNetMaskHead', num_convs=1, in_channels=WIDTH,
                       conv_out_channels=WIDTH, num_classes=C,
                       conv_to_res=True),
        glbctx_head=dict(type='GlobalContextHead', num_convs=1,
                         in_channels=WIDTH, conv_out_channels=WIDTH,
                         num_classes=C, conv_to_res=True),
        feat_relay_head=dict(type='FeatureRelayHead', in_channels=16,
                             out_conv_channels=WIDTH, roi_feat_size=7,
                             scale_factor=2)),
}


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny tensors: threads cost more than they give."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')  # detectors build their parts by name


def detector_cfg(head, **isda):
    roi_head = copy.deepcopy(ROI_HEADS[head])
    stages = roi_head.get('num_stages', 1)
    heads = roi_head['bbox_head']

    def twin(cfg):
        return dict(cfg, type='ISDA' + cfg['type'], **isda) if isda else cfg

    roi_head['bbox_head'] = [twin(h) for h in heads] if stages > 1 else twin(
        heads)
    return ConfigDict(  # attribute access to train_cfg.rpn
        type='SCNet' if stages > 1 else 'FasterRCNN',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[128.] * 3,
                               std=[64.] * 3, pad_size_divisor=32,
                               pad_mask=True),
        backbone=dict(type='ResNet', depth=18, base_channels=WIDTH,
                      out_indices=(0, 1, 2, 3), norm_eval=False),
        neck=dict(type='FPN', in_channels=[8, 16, 32, 64],
                  out_channels=WIDTH, num_outs=5),
        rpn_head=dict(
            type='RPNHead', in_channels=WIDTH, feat_channels=WIDTH,
            anchor_generator=dict(type='AnchorGenerator', scales=[4],
                                  ratios=[0.5, 1.0, 2.0],
                                  strides=[4, 8, 16, 32, 64]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
            loss_bbox=dict(type='L1Loss')),
        roi_head=roi_head,
        train_cfg=dict(
            rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7,
                                   neg_iou_thr=0.3, min_pos_iou=0.3,
                                   ignore_iof_thr=-1),
                     sampler=dict(type='RandomSampler', num=64,
                                  pos_fraction=0.5, neg_pos_ub=-1,
                                  add_gt_as_proposals=False),
                     allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=200, max_per_img=50,
                              nms=dict(type='nms', iou_threshold=0.7),
                              min_bbox_size=0),
            rcnn=[RCNN_TRAIN] * stages if stages > 1 else RCNN_TRAIN),
        test_cfg=dict(
            rpn=dict(nms_pre=200, max_per_img=50,
                     nms=dict(type='nms', iou_threshold=0.7),
                     min_bbox_size=0),
            rcnn=dict(score_thr=0.0, nms=dict(type='nms',
                                               iou_threshold=0.5),
                      max_per_img=20, mask_thr_binary=0.5)))


def build_pair(head, **isda):
    """An ISDA detector and the stock one with the same weights."""
    model = MODELS.build(detector_cfg(head, **isda))
    stock = MODELS.build(detector_cfg(head))
    stock.load_state_dict({k: v for k, v in model.state_dict().items()
                           if '.isda.' not in k})
    return model, stock


def make_batch(seed=0):
    """Two images, each with a box of every class (and its mask)."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(2):
        image = torch.randint(0, 60, (3, SIZE, SIZE), generator=gen)
        corners = torch.randint(0, SIZE // 2, (C, 2), generator=gen)
        sizes = torch.randint(16, SIZE // 2, (C, 2), generator=gen)
        boxes = torch.cat([corners, corners + sizes], 1).float()
        masks = np.zeros((C, SIZE, SIZE), np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
            image[:, y0:y1, x0:x1] = 80 * (k + 1)
            masks[k, y0:y1, x0:x1] = 1
        sample = DetDataSample(metainfo=dict(
            img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
            scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.arange(C),
            masks=BitmapMasks(masks, SIZE, SIZE))
        inputs.append(image.to(torch.uint8))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def isda_heads(model):
    heads = model.roi_head.bbox_head
    return list(heads) if isinstance(heads, torch.nn.ModuleList) else [heads]


def seeded_loss(model, batch):
    torch.manual_seed(0)  # the same proposals and sampled RoIs
    model.train()
    data = model.data_preprocessor(batch, True)
    return model(**data, mode='loss')


def record_targets(head):
    """Keep the (labels, label_weights) every ``loss_and_target`` makes."""
    head.recorded, stock = [], head.loss_and_target

    def loss_and_target(*args, **kwargs):
        out = stock(*args, **kwargs)
        head.recorded.append(out['bbox_targets'][:2])
        return out

    head.loss_and_target = loss_and_target


@pytest.mark.parametrize('head', ROI_HEADS)
def test_lambda0_zero_gives_the_stock_losses(head):
    model, stock = build_pair(head, lambda0=0.0)
    got, want = seeded_loss(model, make_batch()), seeded_loss(
        stock, make_batch())
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0,
                                   msg=key)
    extra = set(got) - set(want)
    assert extra and all('isda_' in k for k in extra)
    assert all(got[k] == 0 for k in extra if k.endswith('isda_lambda'))


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('head', twins.MORE)
def test_loss_matches_reference(head, covariance):
    twins.check_loss_matches_reference(head, covariance)


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
@pytest.mark.parametrize('head', twins.MORE)
def test_autocast_forward_backward(head, covariance):
    twins.check_autocast_forward_backward(head, covariance)


@pytest.mark.parametrize('head', ROI_HEADS)
def test_detector_losses_match_reference(head):
    """In the detector, as its RoI head calls each stage: the statistics of
    the sampled RoIs' fc_cls inputs, loss_cls (times the stage's weight)
    against the float32 reference, every other loss the stock one."""
    model, stock = build_pair(head, lambda0=twins.RATIO, covariance='full')
    heads = isda_heads(model)
    for h in heads:
        record_targets(h)
    with contextlib.ExitStack() as stack:
        seen = [stack.enter_context(layer_inputs(h.fc_cls)) for h in heads]
        got = seeded_loss(model, make_batch())
    want = seeded_loss(stock, make_batch())
    cls_keys = [k for k in want if k.endswith('loss_cls') and 'rpn' not in k]
    assert len(cls_keys) == len(heads)
    for key in set(want) - set(cls_keys):
        # RPN losses are lists (one entry per FPN level).
        assert torch.equal(*(torch.stack(v) if isinstance(v, list) else v
                             for v in (got[key], want[key]))), key
    stage_weights = model.roi_head.stage_loss_weights if len(heads) > 1 \
        else [1]
    tol = dict(rtol=1e-5, atol=1e-6)
    for key, h, features, stage_weight in zip(cls_keys, heads, seen,
                                              stage_weights):
        (labels, weights), = h.recorded
        (x, ), skip = features, twins.skipped(labels, weights)
        mean, cov, count = reference_statistics([(x, skip)], C + 1, -1)
        estimator = h.isda.estimator
        assert torch.equal(estimator.count, count)
        assert 0 < count.sum() < len(labels)
        torch.testing.assert_close(estimator.mean.double(), mean, **tol)
        torch.testing.assert_close(estimator.covariance.double(), cov, **tol)
        loss_cls = twins.reference_loss_cls(
            x, labels, weights, skip, h.fc_cls.weight.detach(),
            h.fc_cls.bias.detach(), cov, loss_cfg=dict(loss_weight=1.0))
        torch.testing.assert_close(got[key].double(), stage_weight * loss_cls,
                                   **tol, msg=key)


@pytest.mark.parametrize('head', ROI_HEADS)
def test_train_step_then_checkpoint_predicts_as_stock(head, tmp_path):
    model = MODELS.build(detector_cfg(head, lambda0=1.0))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    log = model.train_step(make_batch(), optim)
    assert torch.isfinite(log['loss'])
    assert any(k.endswith('isda_lambda') for k in log)
    changed = {k for k, v in model.state_dict().items()
               if not torch.equal(v, before[k])}
    for i, h in enumerate(isda_heads(model)):
        prefix = 'roi_head.bbox_head' + (f'.{i}' if head == 'SCNetBBoxHead'
                                         else '')
        assert f'{prefix}.fc_cls.weight' in changed
        assert h.isda.estimator.count.sum() > 0

    # The checkpoint loads into the stock detector, which predicts the same.
    save_checkpoint(model.state_dict(), str(tmp_path / 'isda.pth'))
    stock = MODELS.build(detector_cfg(head))
    load_checkpoint(stock, str(tmp_path / 'isda.pth'))
    batch = make_batch(seed=1)
    results = []
    for m in (model, stock):
        m.eval()
        data = m.data_preprocessor(batch, False)
        with torch.no_grad():
            results.append((m(**data, mode='tensor'),
                            m(**data, mode='predict')))
    (got_tensor, got), (want_tensor, want) = results
    torch.testing.assert_close(got_tensor, want_tensor, rtol=0, atol=0)
    for g, w in zip(got, want):
        assert len(w.pred_instances) > 0
        for key in w.pred_instances.keys():
            assert torch.equal(g.pred_instances[key],
                               w.pred_instances[key]), key


# Each refused family and a phrase of its reason.
REASONS = {
    'DETRHead': 'DETR-style', 'DINOHead': 'sigmoid focal loss',
    'DeformableDETRHead': 'Hungarian-matched',
    'ConditionalDETRHead': 'DETR-style', 'DABDETRHead': 'DETR-style',
    'MaskFormerHead': 'mask-classification',
    'Mask2FormerHead': 'mask-classification',
    'DIIHead': 'sigmoid focal loss', 'MultiInstanceBBoxHead': 'EMD loss',
    'RetinaHead': 'sigmoid or focal', 'RPNHead': 'sigmoid or focal',
    'SSDHead': 'softmax classifier is a convolution',
    'YOLACTHead': 'softmax classifier is a convolution',
    'EmbeddingRPNHead': 'no class logits', 'FCNMaskHead': 'mask or context',
}
ALL_HEADS = sorted({*bbox_heads.__all__, *dense_heads.__all__,
                    *mask_heads.__all__})


def test_every_head_is_supported_or_refused():
    refused = REFUSED_HEADS
    assert not set(SUPPORTED_HEADS) & set(refused)
    assert set(ALL_HEADS) == set(SUPPORTED_HEADS) | set(refused)
    assert set(REASONS) <= set(refused)


@pytest.mark.parametrize(
    'name', sorted(set(ALL_HEADS) - set(SUPPORTED_HEADS)))
def test_refused_head_says_why(name):
    with pytest.raises(ValueError) as error:
        MODELS.build(dict(type='ISDA' + name, num_classes=C))
    message = str(error.value)
    assert message.startswith(f'ISDA{name}: ')
    assert message == f'ISDA{name}: {REFUSED_HEADS[name]}'
    assert message.replace('e.g. ', '').count('. ') == 0  # one sentence
    assert re.search(re.escape(REASONS.get(name, '')), message)


def test_seesaw_lvis_bbox_head_names_both_faults():
    # The Seesaw LVIS configs' head: cosine classifier and Seesaw loss.
    cfg = dict(type='ISDAShared2FCBBoxHead', num_classes=C, in_channels=4,
               fc_out_channels=6, roi_feat_size=3,
               cls_predictor_cfg=dict(type='NormedLinear', tempearture=20),
               loss_cls=dict(type='SeesawLoss', p=0.8, q=2.0, num_classes=C))
    with pytest.raises(ValueError, match='loss_cls is SeesawLoss and '
                       'cls_predictor_cfg builds NormedLinear'):
        MODELS.build(cfg)


ZOO = Path(mmdet.__file__).parent / '.mim' / 'configs'


# Widths only: the zoo's classes, classifier, losses and layout stay.
NARROW = dict.fromkeys(('in_channels', 'fc_out_channels', 'cls_in_channels',
                        'reg_in_channels', 'cls_out_channels',
                        'reg_offset_out_channels', 'reg_cls_out_channels'),
                       WIDTH)


def zoo_bbox_heads(pattern, *extra):
    """A test parameter per bbox head of the zoo configs matching pattern."""
    for path in sorted(ZOO.glob(pattern)):
        heads = Config.fromfile(path).model.roi_head.bbox_head
        heads = heads if isinstance(heads, list) else [heads]
        for i, head in enumerate(heads):
            narrow = {k: v for k, v in NARROW.items() if k in head}
            twin = dict(head, type='ISDA' + head.type, **narrow)
            yield pytest.param(twin, *extra, id=f'{path.stem}:{i}')


@pytest.mark.parametrize('head', [*zoo_bbox_heads('scnet/scnet_*.py'),
                                  *zoo_bbox_heads('sabl/sabl-*-rcnn_*.py')])
def test_zoo_heads_build_their_twins(head):
    twin = MODELS.build(head)
    assert twin.isda.estimator.count.shape == (head['num_classes'] + 1, )


@pytest.mark.parametrize('head, match', [
    *zoo_bbox_heads('crowddet/crowddet-*.py', 'EMD loss'),
    *zoo_bbox_heads('seesaw_loss/*.py',
                    'cls_predictor_cfg builds NormedLinear'),
])
def test_zoo_heads_without_a_bound_are_refused(head, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(head)

"""mmdet heads with no ``ISDA<Head>`` twin, each with the reason.

Registering ``ISDA<Head>`` for them turns a bare registry ``KeyError`` into
a ``ValueError`` that says why and what to use instead when the model is
built. Each reason is one sentence; none of these heads is approximated.
"""
from typing import Dict

from mmdet.models import dense_heads
from mmdet.models.roi_heads import mask_heads

_INSTEAD = ('use ISDA in the bbox head of a two-stage detector, e.g. '
            'ISDAShared2FCBBoxHead')

_DENSE = ('{name} is a dense (one-stage or RPN) head whose classification '
          "in mmdet's configs is sigmoid or focal, which has no ISDA bound "
          '(it is derived for the softmax cross-entropy of a linear '
          'classifier); ' + _INSTEAD)
# The one-stage heads that do classify with a softmax.
_DENSE_SOFTMAX = (
    '{name} is a one-stage dense head whose softmax classifier is a '
    'convolution shared by every anchor of a feature map, trained with '
    'hard-negative mining, which this plugin does not augment (its ISDA '
    'heads hold per-RoI linear classifiers); ' + _INSTEAD)
_DETR = (
    '{name} is a DETR-style set-prediction head that classifies '
    'Hungarian-matched queries at every decoder layer inside its own '
    'loss_by_feat, with sigmoid focal loss (no ISDA bound) in every zoo '
    "config except DETR's, whose softmax this plugin does not augment; "
    'keep it stock, or ' + _INSTEAD)
_MASK_CLASSIFICATION = (
    '{name} is a mask-classification head: it classifies Hungarian-matched '
    'queries at every decoder layer jointly with their mask losses, which '
    'this plugin does not augment; keep it stock, or use '
    'ISDAShared2FCBBoxHead (instances) or an mmseg ISDA decode head '
    '(semantic segmentation)')
_NO_CLASSIFIER = ('{name} outputs no class logits (it adapts features, or '
                  'makes proposals, prototypes or masks), so ISDA has '
                  'nothing to augment; keep it stock')
_MASK_BRANCH = (
    '{name} is a mask or context head of a RoI head (instance masks, mask '
    'IoU, grid points, semantic or global context), not its box '
    "classifier, and ISDA in mmdet augments only the bbox head's class "
    'logits; keep it stock and ' + _INSTEAD)

_BBOX = {
    'DIIHead': (
        'DIIHead (Sparse R-CNN, QueryInst) classifies Hungarian-matched '
        'queries inside its own loss_and_target, which this plugin does not '
        'augment, with sigmoid focal loss in every zoo config, which has no '
        'ISDA bound; keep it stock, or ' + _INSTEAD),
    'MultiInstanceBBoxHead': (
        "MultiInstanceBBoxHead (CrowdDet) scores each RoI's two instance "
        'predictions with an EMD loss, the minimum over both '
        'instance-to-target matchings of two softmax cross-entropies plus '
        'box losses, with both targets read from the same RoI features, so '
        'the ISDA bound for a per-RoI softmax cross-entropy does not apply; '
        'keep it stock'),
}


def _family(name: str) -> str:
    head = getattr(dense_heads, name)
    if issubclass(head, dense_heads.DETRHead):
        return _DETR
    if issubclass(head, dense_heads.MaskFormerHead):
        return _MASK_CLASSIFICATION
    if issubclass(head, (dense_heads.SSDHead, dense_heads.YOLACTHead)):
        return _DENSE_SOFTMAX
    if name in ('FeatureAdaption', 'YOLACTProtonet', 'EmbeddingRPNHead',
                'CondInstMaskHead', 'BoxInstMaskHead'):
        return _NO_CLASSIFIER
    return _DENSE


def _reasons() -> Dict[str, str]:
    reasons = {name: _family(name).format(name=name)
               for name in dense_heads.__all__}
    reasons.update(
        (name, _MASK_BRANCH.format(name=name)) for name in mask_heads.__all__)
    reasons.update(_BBOX)
    return reasons


# Stock head name -> why it has no ISDA twin (one sentence).
REFUSED_HEADS = _reasons()

"""``ISDA<Head>`` for the mmseg decode heads ISDA cannot bound: building
one raises a ValueError that says why and what to use instead, rather than
failing with "not in the registry" or training an approximation."""
from mmseg.registry import MODELS

from ..engine import register_refusals

_PER_PIXEL = 'use a per-pixel head with ISDA instead, e.g. ISDAUPerHead'
_MASKS = ('classifies mask proposals by per-query class logits under a '
          'matching (set-prediction) loss, not pixels by a fixed linear '
          'classifier under softmax cross-entropy, so ISDA has no bound for '
          f'it; {_PER_PIXEL}')
_KNET = ("K-Net's kernels are updated from each image's features, so its "
         'classifier is no fixed linear layer on them and the ISDA bound '
         f'does not hold; {_PER_PIXEL}')
# Head -> why ISDA does not apply (one sentence, after "ISDA<Head>: ").
REFUSED_HEADS = {
    'MaskFormerHead': 'MaskFormerHead ' + _MASKS,
    'Mask2FormerHead': 'Mask2FormerHead ' + _MASKS,
    'SideAdapterCLIPHead': 'SideAdapterCLIPHead (SAN) ' + _MASKS,
    'IterativeDecodeHead': _KNET,
    'KernelUpdateHead': _KNET,
    'KernelUpdator': _KNET,
    'SegmenterMaskTransformerHead': (
        'SegmenterMaskTransformerHead scores pixels by the layer-normed '
        'cosine similarity with class embeddings computed per image, not by '
        'a fixed linear classifier, so the ISDA bound does not hold; use '
        "Segmenter's linear decoder with ISDA instead, ISDAFCNHead with "
        'num_convs=0'),
    'STDCHead': (
        'STDCHead trains on binary boundary maps that its loss_by_feat '
        "derives from the labels, with sigmoid cross-entropy and Dice in "
        "STDC's configs, neither of which has an ISDA bound; keep STDCHead "
        'stock beside an ISDA decode head, e.g. ISDAFCNHead'),
    'VPDDepthHead': (
        'VPDDepthHead regresses depth, so there are no classes whose '
        'features ISDA could augment; use the stock head'),
}


register_refusals(MODELS, REFUSED_HEADS)

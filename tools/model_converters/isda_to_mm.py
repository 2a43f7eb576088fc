"""Convert ImageNet checkpoints of the ISDA paper to OpenMMLab checkpoints.

The paper's COCO experiments (Wang et al., *Regularizing Deep Networks with
Semantic Data Augmentation*, T-PAMI 2021) fine-tune detectors from ImageNet
backbones that were pre-trained with ISDA; the detectors themselves are
trained normally. The released ImageNet checkpoints are plain PyTorch state
dicts of torchvision-style networks (ResNet-50/101/152, ResNeXt-50 32x4d,
ResNeXt-101 32x8d, DenseNet-BC-121 and -265), possibly nested under
``'state_dict'`` and with the ``module.`` prefix of ``DataParallel``. The
released DenseNet code names torchvision's ``features.norm5`` and
``classifier`` ``features.norm_final`` and ``fc``, and its ``densenet121``
and ``densenet265`` keep the 24-filter stem of its CIFAR networks, so the
stem width, like the growth rate and the block depths, is read from the
weights: DenseNet-BC-265 (blocks of 6, 12, 64 and 48 layers), which
mmpretrain does not name, gets an ``arch`` dict. This script rewrites them
as

* ``--format mmpretrain`` (default): an mmpretrain ``ImageClassifier``
  checkpoint (``backbone.*`` for ``ResNet``/``ResNeXt``/``DenseNet``,
  ``head.fc.*`` for ``LinearClsHead``), which a detector config reads with
  ``init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=...)``;
* ``--format mmdet``: an mmdet ``ResNet``/``ResNeXt`` backbone checkpoint
  (backbone keys without prefix, classifier dropped), which a detector
  config reads with ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

Every source key must be understood: anything else is an error that lists
the keys, because mmengine's ``Pretrained`` initialisation loads with
``strict=False`` and would otherwise leave layers silently at random. The
output holds only tensors, strings and numbers, so it loads with
``torch.load(..., weights_only=True)``::

    python tools/model_converters/isda_to_mm.py SRC DST [--format mmdet]
"""
import argparse
import os
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

try:  # numpy scalars in training records (best_prec1, ...) are safe data
    from isda_mm.engine import register_safe_globals
except ImportError:  # isda_mm not installed: tensors and containers only
    register_safe_globals = None

StateDict = Dict[str, torch.Tensor]

FORMATS = ('mmpretrain', 'mmdet')
BN_PARAMS = r'(?:weight|bias|running_mean|running_var|num_batches_tracked)'

# torchvision ResNet / ResNeXt keys; mmpretrain and mmdet name the backbone's
# modules the same way (conv1/bn1 stem, layerN.B.convK/bnK, downsample.0/1).
RESNET_BACKBONE_KEY = re.compile(
    r'(?:conv1\.weight|bn1\.' + BN_PARAMS + r'|layer[1-4]\.\d+\.(?:'
    r'conv[1-3]\.weight|bn[1-3]\.' + BN_PARAMS + r'|downsample\.0\.weight'
    r'|downsample\.1\.' + BN_PARAMS + r'))$')
RESNET_FC_KEY = re.compile(r'fc\.(weight|bias)$')

# torchvision DenseNet keys. Checkpoints saved before torchvision 0.3 name
# the layers of a dense layer 'norm.1', 'conv.1', ... instead of 'norm1'; the
# released ISDA DenseNet code names the final norm 'norm_final' and the
# classifier 'fc'.
DENSENET_STEM_KEY = re.compile(
    r'features\.(conv0\.weight|norm0\.' + BN_PARAMS + r')$')
DENSENET_LAYER_KEY = re.compile(
    r'features\.denseblock(\d+)\.denselayer(\d+)\.(norm|conv)\.?([12])\.('
    + BN_PARAMS + r')$')
DENSENET_TRANSITION_KEY = re.compile(
    r'features\.transition(\d+)\.(norm\.' + BN_PARAMS + r'|conv\.weight)$')
DENSENET_FINAL_NORM_KEY = re.compile(
    r'features\.(?:norm5|norm_final)\.(' + BN_PARAMS + r')$')
DENSENET_CLASSIFIER_KEY = re.compile(r'(?:classifier|fc)\.(weight|bias)$')

# Bottleneck (conv3 present) or basic blocks per stage -> depth.
RESNET_DEPTHS = {
    (False, (2, 2, 2, 2)): 18,
    (False, (3, 4, 6, 3)): 34,
    (True, (3, 4, 6, 3)): 50,
    (True, (3, 4, 23, 3)): 101,
    (True, (3, 8, 36, 3)): 152,
}
# (dense layers per block, growth rate, stem filters) -> mmpretrain's named
# DenseNet archs; any other layout is given as an arch dict.
DENSENET_ARCHS = {
    ((6, 12, 24, 16), 32, 64): '121',
    ((6, 12, 32, 32), 32, 64): '169',
    ((6, 12, 48, 32), 32, 64): '201',
    ((6, 12, 36, 24), 48, 96): '161',
}


def load_source(path: str) -> StateDict:
    """Load a released checkpoint as a flat state dict.

    Args:
        path (str): A file written by ``torch.save``: a state dict, or a dict
            holding one under ``'state_dict'`` beside training records
            (``epoch``, ``best_prec1``, ...), as ImageNet training scripts
            save them.

    Returns:
        dict[str, torch.Tensor]: The state dict, ``module.`` prefixes
        removed.

    Raises:
        ValueError: If the file holds Python objects other than tensors and
            plain containers, or no state dict can be found in it.
    """
    if register_safe_globals is not None:
        register_safe_globals()
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f'{path} holds Python objects that torch.load(weights_only=True) '
            'refuses to unpickle. If, and only if, you trust the file, '
            'extract its weights once with torch.save(torch.load(SRC, '
            'weights_only=False)["state_dict"], SRC_WEIGHTS) and convert '
            f'that file. Unpickler: {error}') from error
    return extract_state_dict(checkpoint, path)


def extract_state_dict(checkpoint: dict, name: str = 'checkpoint'
                       ) -> StateDict:
    """Find the state dict in a loaded checkpoint and strip ``module.``.

    Args:
        checkpoint (dict): What ``torch.load`` returned.
        name (str): How to call the checkpoint in error messages.
            Defaults to ``'checkpoint'``.

    Returns:
        dict[str, torch.Tensor]: The flat state dict.

    Raises:
        ValueError: If no state dict is found, or it holds non-tensors.
    """
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{name} is a {type(checkpoint).__name__}, not a '
                         'state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise ValueError(f'{name}["state_dict"] is a '
                         f'{type(state_dict).__name__}, not a state dict')
    others = sorted(k for k, v in state_dict.items()
                    if not isinstance(v, torch.Tensor))
    if others or not state_dict:
        raise ValueError(
            f'{name} is neither a state dict nor a dict with one under '
            f'"state_dict"; entries that are not tensors: {others}')
    stripped = OrderedDict()
    for key, value in state_dict.items():
        while key.startswith('module.'):
            key = key[len('module.'):]
        if key in stripped:
            raise ValueError(f'{name}: key {key!r} occurs both with and '
                             'without the "module." prefix')
        stripped[key] = value
    return stripped


def detect_family(state_dict: StateDict) -> str:
    """Tell a torchvision ResNet/ResNeXt from a DenseNet by its keys.

    Args:
        state_dict (dict[str, torch.Tensor]): A torchvision-style state dict.

    Returns:
        str: ``'resnet'`` (ResNet and ResNeXt) or ``'densenet'``.

    Raises:
        ValueError: If the keys belong to neither.
    """
    if 'layer1.0.conv1.weight' in state_dict:
        return 'resnet'
    if 'features.conv0.weight' in state_dict:
        return 'densenet'
    raise ValueError(
        'not a torchvision ResNet/ResNeXt (no layer1.0.conv1.weight) or '
        'DenseNet (no features.conv0.weight); first keys: '
        f'{list(state_dict)[:8]}')


def describe_resnet(state_dict: StateDict) -> Tuple[str, dict]:
    """Read depth, groups and width of a torchvision ResNet/ResNeXt.

    Args:
        state_dict (dict[str, torch.Tensor]): A torchvision ResNet or ResNeXt
            state dict.

    Returns:
        tuple[str, dict]: The torchvision name (``'resnet50'``,
        ``'resnext101_32x8d'``, ...) and the mmpretrain backbone config that
        fits the weights.

    Raises:
        ValueError: If the stage layout is no ResNet depth the toolkits
            build.
    """
    blocks = tuple(
        len({key.split('.')[1] for key in state_dict
             if key.startswith(f'layer{stage}.')}) for stage in range(1, 5))
    bottleneck = 'layer1.0.conv3.weight' in state_dict
    depth = RESNET_DEPTHS.get((bottleneck, blocks))
    if depth is None:
        kind = 'bottleneck' if bottleneck else 'basic'
        raise ValueError(
            f'{blocks} {kind} blocks per stage match no ResNet depth of '
            'mmpretrain/mmdet (18, 34, 50, 101, 152)')
    # The first 3x3 conv of stage 1 is (groups * width, width, 3, 3).
    out_channels, group_channels = state_dict['layer1.0.conv2.weight'].shape[
        :2]
    groups = out_channels // group_channels
    if groups == 1 and out_channels == 64:
        return f'resnet{depth}', dict(type='ResNet', depth=depth)
    if groups > 1 and bottleneck:
        return (f'resnext{depth}_{groups}x{group_channels}d',
                dict(type='ResNeXt', depth=depth, groups=groups,
                     width_per_group=group_channels))
    raise ValueError(
        f'layer1.0.conv2.weight has {out_channels} outputs in groups of '
        f'{group_channels} channels: neither a ResNet nor a ResNeXt (wide '
        'ResNets are not built by mmpretrain/mmdet)')


def describe_densenet(state_dict: StateDict) -> Tuple[str, dict]:
    """Read the block depths, growth rate and stem width of a DenseNet.

    Args:
        state_dict (dict[str, torch.Tensor]): A torchvision-style DenseNet
            state dict (any key pattern :func:`convert_densenet` reads).

    Returns:
        tuple[str, dict]: The name by depth (``'densenet121'``,
        ``'densenet265'``, ...) and the mmpretrain backbone config that fits
        the weights: a named ``arch`` where mmpretrain has one with the same
        layout, else ``arch=dict(growth_rate, depths, init_channels)``.

    Raises:
        ValueError: If the blocks are not numbered 1, 2, ... with layers
            1, 2, ..., or the bottleneck filters are no multiple of the
            growth rate.
    """
    layers = {}
    for key in state_dict:
        match = DENSENET_LAYER_KEY.match(key)
        if match:
            block, layer = int(match.group(1)), int(match.group(2))
            layers.setdefault(block, set()).add(layer)
    if sorted(layers) != list(range(1, len(layers) + 1)) or any(
            found != set(range(1, len(found) + 1))
            for found in layers.values()):
        raise ValueError(
            'the dense blocks and layers of the source are not numbered '
            f'1, 2, ...: {dict(sorted(layers.items()))}')
    depths = tuple(len(layers[block]) for block in sorted(layers))
    conv1, conv2 = (
        _dense_layer_weight(state_dict, index) for index in ('1', '2'))
    growth = conv2.shape[0]
    bn_size, rest = divmod(conv1.shape[0], growth)
    if rest:
        raise ValueError(
            f'the bottleneck has {conv1.shape[0]} filters, no multiple of '
            f'the growth rate {growth}: not a DenseNet-B')
    init_channels = state_dict['features.conv0.weight'].shape[0]
    # Convolutions and the classifier: 2 per dense layer, the stem, one per
    # transition and the classifier.
    name = f'densenet{2 * sum(depths) + len(depths) + 1}'
    arch = DENSENET_ARCHS.get((depths, growth, init_channels))
    if arch is None:
        arch = dict(growth_rate=growth, depths=list(depths),
                    init_channels=init_channels)
    backbone = dict(type='DenseNet', arch=arch)
    if bn_size != 4:  # mmpretrain's default
        backbone['bn_size'] = bn_size
    return name, backbone


def _dense_layer_weight(state_dict: StateDict, index: str) -> torch.Tensor:
    """The ``conv{index}`` weight of the first dense layer (either pattern).
    """
    for key in (f'features.denseblock1.denselayer1.conv{index}.weight',
                f'features.denseblock1.denselayer1.conv.{index}.weight'):
        if key in state_dict:
            return state_dict[key]
    raise ValueError('the source has no features.denseblock1.denselayer1.'
                     f'conv{index}.weight')


def _check_all_mapped(state_dict: StateDict, mapped: set,
                      family: str) -> None:
    leftover = [key for key in state_dict if key not in mapped]
    if leftover:
        raise ValueError(
            f'{len(leftover)} key(s) of the source are not part of a '
            f'torchvision {family} and would be lost: {leftover}')


def convert_resnet(state_dict: StateDict, target: str = 'mmpretrain'
                   ) -> StateDict:
    """Rename a torchvision ResNet/ResNeXt state dict for mmpretrain/mmdet.

    Args:
        state_dict (dict[str, torch.Tensor]): Flat torchvision state dict.
        target (str): ``'mmpretrain'`` (``backbone.*`` and ``head.fc.*``) or
            ``'mmdet'`` (bare backbone keys, ``fc`` dropped). Defaults to
            ``'mmpretrain'``.

    Returns:
        dict[str, torch.Tensor]: The converted state dict.

    Raises:
        ValueError: On keys that are not a torchvision ResNet's, or a missing
            classifier for ``target='mmpretrain'``.
    """
    _check_target(target)
    converted = OrderedDict()
    mapped = set()
    for key, value in state_dict.items():
        if RESNET_BACKBONE_KEY.match(key):
            mapped.add(key)
            converted[key if target == 'mmdet' else 'backbone.' + key] = value
        elif RESNET_FC_KEY.match(key):
            mapped.add(key)
            # the deliberate drop: detectors have no ImageNet classifier
            if target == 'mmpretrain':
                converted['head.' + key] = value
    _check_all_mapped(state_dict, mapped, 'ResNet/ResNeXt')
    if target == 'mmpretrain':
        _check_classifier(converted, 'fc')
    return converted


def convert_densenet(state_dict: StateDict, target: str = 'mmpretrain'
                     ) -> StateDict:
    """Rename a torchvision-style DenseNet state dict for mmpretrain.

    ``features.conv0``/``norm0`` become ``backbone.stem.0``/``stem.1``,
    ``denseblockB.denselayerL`` becomes ``backbone.stages.(B-1).block.(L-1)``,
    ``transitionT`` becomes ``backbone.transitions.(T-1)``, the final
    ``norm5`` (``norm_final`` in the released ISDA code) the norm of the last
    transition, and ``classifier`` (``fc``) the head's ``fc``.

    Args:
        state_dict (dict[str, torch.Tensor]): Flat torchvision state dict,
            with either the current (``norm1``) or the pre-0.3 (``norm.1``)
            dense layer key pattern, or the released ISDA code's names.
        target (str): Only ``'mmpretrain'``: mmdet has no DenseNet.
            Defaults to ``'mmpretrain'``.

    Returns:
        dict[str, torch.Tensor]: The converted state dict.

    Raises:
        ValueError: For ``target='mmdet'``, keys that are not a torchvision
            DenseNet's, two source keys for one target (``norm5`` and
            ``norm_final``, say) or a missing classifier.
    """
    _check_target(target)
    if target != 'mmpretrain':
        raise ValueError(
            'mmdet has no DenseNet backbone, so a DenseNet checkpoint can '
            'only be converted with --format mmpretrain (for mmpretrain '
            'configs, e.g. configs/classification/imagenet/'
            'densenet121_8xb64-coslr-300e_in1k.py)')
    blocks = {int(match.group(1)) for match in map(
        DENSENET_LAYER_KEY.match, state_dict) if match}
    last_transition = len(blocks) - 1
    converted = OrderedDict()
    mapped = set()
    sources = {}  # target key -> source key, to catch aliases given twice
    for key, value in state_dict.items():
        match = DENSENET_STEM_KEY.match(key)
        if match:
            name = match.group(1)
            new_key = ('stem.0.' if name.startswith('conv0') else 'stem.1.'
                       ) + name.split('.', 1)[1]
        elif DENSENET_LAYER_KEY.match(key):
            block, layer, kind, index, param = DENSENET_LAYER_KEY.match(
                key).groups()
            new_key = (f'stages.{int(block) - 1}.block.{int(layer) - 1}.'
                       f'{kind}{index}.{param}')
        elif DENSENET_TRANSITION_KEY.match(key):
            transition, rest = DENSENET_TRANSITION_KEY.match(key).groups()
            new_key = f'transitions.{int(transition) - 1}.{rest}'
        elif DENSENET_FINAL_NORM_KEY.match(key):
            param = DENSENET_FINAL_NORM_KEY.match(key).group(1)
            # mmpretrain's last "transition" is Sequential(norm, act).
            new_key = f'transitions.{last_transition}.0.{param}'
        elif DENSENET_CLASSIFIER_KEY.match(key):
            new_key = 'head.fc.' + key.split('.', 1)[1]
        else:
            continue
        mapped.add(key)
        if not new_key.startswith('head.'):
            new_key = 'backbone.' + new_key
        if new_key in sources:
            raise ValueError(
                f'{sources[new_key]!r} and {key!r} of the source both '
                f'convert to {new_key!r}; keep one of them')
        sources[new_key] = key
        converted[new_key] = value
    _check_all_mapped(state_dict, mapped, 'DenseNet')
    _check_classifier(converted, 'classifier')
    return converted


def _check_target(target: str) -> None:
    if target not in FORMATS:
        raise ValueError(f'target={target!r}; choose one of {FORMATS}')


def _check_classifier(converted: StateDict, source_name: str) -> None:
    missing = [f'head.fc.{p}' for p in ('weight', 'bias')
               if f'head.fc.{p}' not in converted]
    if missing:
        raise ValueError(
            f'the source has no {source_name}.weight/bias, which the '
            f'mmpretrain checkpoint needs for {missing}; convert a backbone '
            'alone with --format mmdet')


def convert(state_dict: StateDict, target: str = 'mmpretrain'
            ) -> Tuple[StateDict, dict]:
    """Convert a torchvision-style ImageNet state dict to ``target``.

    Args:
        state_dict (dict[str, torch.Tensor]): Flat torchvision state dict of
            a ResNet, ResNeXt or DenseNet (see :func:`extract_state_dict`).
        target (str): ``'mmpretrain'`` or ``'mmdet'``. Defaults to
            ``'mmpretrain'``.

    Returns:
        tuple[dict, dict]: The converted state dict, and a ``meta`` dict that
        names the architecture (``arch``), the mmpretrain backbone config
        that fits it (``backbone``) and, for ``'mmpretrain'``, the
        ``in_channels`` and ``num_classes`` of the head's ``fc``
        (``head``).

    Raises:
        ValueError: On unknown or leftover keys, an unsupported layout, or a
            DenseNet with ``target='mmdet'``.
    """
    _check_target(target)
    family = detect_family(state_dict)
    # Keys first: a stray key gives a clearer error than a layout mismatch.
    if family == 'resnet':
        converted = convert_resnet(state_dict, target)
        arch, backbone = describe_resnet(state_dict)
    else:
        converted = convert_densenet(state_dict, target)
        arch, backbone = describe_densenet(state_dict)
    if target == 'mmdet' and backbone['type'] == 'ResNeXt':
        # mmdet's ResNeXt calls the width of a group base_width.
        backbone['base_width'] = backbone.pop('width_per_group')
    meta = dict(arch=arch, backbone=backbone, format=target,
                converter='tools/model_converters/isda_to_mm.py')
    if target == 'mmpretrain':
        # The configs' head.in_channels must match (a DenseNet's width
        # depends on its stem, which the released code sets differently).
        num_classes, in_channels = converted['head.fc.weight'].shape
        meta['head'] = dict(in_channels=in_channels, num_classes=num_classes)
    return converted, meta


def save_checkpoint(state_dict: StateDict, meta: dict, path: str) -> None:
    """Save ``{'state_dict': ..., 'meta': ...}`` where mmengine reads it.

    Args:
        state_dict (dict[str, torch.Tensor]): The converted weights.
        meta (dict): Strings and numbers only, so that the file loads under
            ``weights_only=True``.
        path (str): Output file; its folder is created if needed.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    weights = OrderedDict(
        (key, value.detach().clone().contiguous())
        for key, value in state_dict.items())
    torch.save(dict(state_dict=weights, meta=meta), path)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv``, or ``sys.argv[1:]`` if None)."""
    parser = argparse.ArgumentParser(
        description='Convert a torchvision-style ImageNet checkpoint (such '
        'as those released with the ISDA paper) to mmpretrain or mmdet')
    parser.add_argument('src', help='the released checkpoint')
    parser.add_argument('dst', help='where to save the converted one')
    parser.add_argument(
        '--format',
        choices=FORMATS,
        default='mmpretrain',
        help='mmpretrain: full classifier (backbone.*, head.fc.*), for '
        'detector configs with init_cfg prefix="backbone."; mmdet: bare '
        'ResNet/ResNeXt backbone, no classifier (default: mmpretrain)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Convert ``args.src`` to ``args.dst``; errors raise ``ValueError``.

    Args:
        argv (list[str], optional): Command line without the program name.
            Defaults to ``sys.argv[1:]``.
    """
    args = parse_args(argv)
    state_dict = load_source(args.src)
    converted, meta = convert(state_dict, args.format)
    meta['source'] = osp.basename(args.src)
    save_checkpoint(converted, meta, args.dst)
    print(f'{meta["arch"]}: {len(state_dict)} tensors -> {len(converted)} '
          f'{args.format} tensors in {args.dst}; backbone config: '
          f'{meta["backbone"]}' + (f'; head: {meta["head"]}'
                                   if 'head' in meta else ''))


if __name__ == '__main__':
    try:
        main()
    except ValueError as error:  # a message for the user, not a traceback
        sys.exit(f'isda_to_mm: error: {error}')

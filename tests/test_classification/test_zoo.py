"""The ISDA heads drop into the installed mmpretrain model zoo.

Walks every config of mmpretrain's zoo (``.mim/configs``, not ``_base_``).
Where ``model.head`` is a head the adapter supports
(``isda_mm.classification.heads.SUPPORTED_HEADS``), only the head's type
becomes ``ISDA<type>`` and the whole model is built with its weights on the
meta device (the zoo has billion-parameter models). A supported head is
refused only for a loss that has no ISDA bound (sigmoid, multi-label) or
for a distillation head mmpretrain itself cannot train; the heads without
an ISDA bound (``REFUSED_HEADS``) are refused by type; the Mixup/CutMix
recipes build. The zoo is parsed once for this file and
``tests/test_tools/test_isda_config.py`` (``tests/zoo_cache.py``). Run with
``pytest -s`` for the summary table.

This walk is independent of ``isda-config``'s (``isda_mm.twin.zoo``): it
finds the zoo's files itself, reads ``model.head`` only and builds whole
models, where the tool walks the folders with ``os.walk``, searches the
whole model for heads and builds each head alone. Every config must land
in the bucket of this walk that matches the tool's verdict, but for the
differences listed in ``KNOWN_DIFFERENCES``.
"""
import collections
import copy
import dataclasses
import re
from pathlib import Path

import mmpretrain
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings
from mmpretrain.registry import MODELS
from mmpretrain.utils import register_all_modules
from zoo_cache import parsed_zoo

import isda_mm  # noqa: F401
from isda_mm.classification.heads import REFUSED_HEADS, SUPPORTED_HEADS
from isda_mm.twin import meta_weights, quiet, walk_zoo

ZOO_DIR = Path(mmpretrain.__file__).parent / '.mim' / 'configs'
SUPPORTED = SUPPORTED_HEADS
REFUSED = tuple(REFUSED_HEADS)
SOFTMAX_LOSSES = ('CrossEntropyLoss', 'LabelSmoothLoss')
MAX_REAL_PARAMETERS = 1 << 20
# This walk's bucket -> isda-config's verdict for the same config.
VERDICT = {'built': 'enabled', 'refused': 'refused',
           'unbuildable': 'undecided', 'broken': 'enabled',
           'skipped': 'unparsed', 'not applicable': 'no head'}
# Configs where the two walks rightly differ: (this walk, the tool's).
KNOWN_DIFFERENCES = {
    # LoRAModel initialises its weights while built, which fails on meta
    # weights: the whole model does not build; the head alone does.
    'vision_transformer/vit-base-p16_8xb64-lora_in1k-384px.py':
    ('unbuildable', 'enabled'),
    # mmdet configs in mmpretrain's zoo (default_scope='mmdet'): no
    # model.head, but an mmdet RoI head the tool enables.
    'byol/benchmarks/mask-rcnn_r50-c4_ms-1x_coco.py':
    ('not applicable', 'enabled'),
    'byol/benchmarks/mask-rcnn_r50_fpn_ms-1x_coco.py':
    ('not applicable', 'enabled'),
}


def zoo_configs():
    return sorted(p for p in ZOO_DIR.rglob('*.py')
                  if '_base_' not in p.relative_to(ZOO_DIR).parts)


def name(path):
    return str(path.relative_to(ZOO_DIR))


def head_type(cfg):
    model = cfg.get('model')
    if not isinstance(model, dict):
        return '(no model)'
    head = model.get('head')
    if not isinstance(head, dict):
        return '(no model.head)'
    kind = head.get('type')
    return kind if isinstance(kind, str) else getattr(kind, '__name__',
                                                      repr(kind))


def loss_of(head):
    return head.get('loss') or dict(type='CrossEntropyLoss')


def is_softmax(loss):
    return (loss.get('type') in SOFTMAX_LOSSES
            and not loss.get('use_sigmoid')
            and loss.get('mode', 'original') != 'multi_label')


def mixes_labels(cfg):
    """Mixup/CutMix, as ``train_cfg.augments`` or ``batch_augments``."""
    model = cfg.model
    preprocessors = (model.get('data_preprocessor'),
                     cfg.get('data_preprocessor'))
    return bool((model.get('train_cfg') or {}).get('augments')) or any(
        isinstance(p, dict) and p.get('batch_augments')
        for p in preprocessors)


def model_cfg(cfg, head):
    model = copy.deepcopy(cfg.model)
    model.head.type = head
    # as mmengine's Runner does with the top-level data_preprocessor
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    return model


def build(cfg):
    with meta_weights():
        return MODELS.build(cfg)


def error(e):
    return f'{type(e).__name__}: {e}'


def first_sentence(message):
    return re.split(r'[.;]\s', f'{message} ', maxsplit=1)[0].strip()


def stock_error(cfg):
    try:
        build(cfg)
    except Exception as e:
        return error(e)
    return None


def outcome(cfg):
    """``(kind, detail)`` of building the config with its ISDA head:
    refused (by the head alone), built, unbuildable (the stock config too)
    or broken (only with ISDA)."""
    stock = cfg.model.head.type
    isda = model_cfg(cfg, 'ISDA' + stock)
    try:
        build(isda.head)
    except (ValueError, TypeError) as e:
        if stock_error(model_cfg(cfg, stock).head) is None:
            return 'refused', first_sentence(e)
        return 'unbuildable', first_sentence(error(e))
    try:
        model = build(isda)
    except Exception as e:
        if stock_error(model_cfg(cfg, stock)) == error(e):
            return 'unbuildable', first_sentence(error(e))
        return 'broken', error(e)
    if (type(model.head).__name__ != 'ISDA' + stock
            or not isinstance(model.head, MODELS.get(stock))):
        return 'broken', f'head built as {type(model.head).__name__}'
    # Frozen tables computed with numpy (PyramidVig's relative positions)
    # are real, and no weights.
    return 'built', sum(p.numel() for p in model.parameters()
                        if not p.is_meta and p.requires_grad)


@dataclasses.dataclass
class Walk:
    configs: int = 0
    supported: int = 0
    built: dict = dataclasses.field(default_factory=dict)
    mixing: list = dataclasses.field(default_factory=list)
    refused: dict = dataclasses.field(default_factory=dict)
    losses: dict = dataclasses.field(default_factory=dict)
    heads: dict = dataclasses.field(default_factory=dict)
    skipped: dict = dataclasses.field(default_factory=dict)
    unbuildable: dict = dataclasses.field(default_factory=dict)
    broken: dict = dataclasses.field(default_factory=dict)
    not_applicable: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    outcomes: dict = dataclasses.field(default_factory=dict)
    # config -> its bucket (a key of VERDICT)
    buckets: dict = dataclasses.field(default_factory=dict)

    def visit(self, path, cfg):
        """One config: ``cfg`` is its parse (classic configs, read without
        lazy-import detection, which misreads those whose base imports a
        module), or the exception parsing raised."""
        self.configs += 1
        key = name(path)
        if isinstance(cfg, Exception):
            self.skipped[key] = first_sentence(error(cfg))
            self.buckets[key] = 'skipped'
            return
        kind = head_type(cfg)
        if kind not in SUPPORTED + REFUSED:
            self.not_applicable[kind] += 1
            self.buckets[key] = 'not applicable'
            return
        if cfg.get('custom_imports'):
            try:
                import_modules_from_strings(**cfg.custom_imports)
            except ImportError as e:
                self.skipped[key] = first_sentence(error(e))
                self.buckets[key] = 'skipped'
                return
        self.supported += 1
        self.losses[key] = loss_of(cfg.model.head)
        self.heads[key] = kind
        # Identical models (other data or schedule) are built once.
        model = repr(model_cfg(cfg, kind).to_dict())
        if model not in self.outcomes:
            self.outcomes[model] = outcome(cfg)
        result, detail = self.outcomes[model]
        getattr(self, result)[key] = detail
        self.buckets[key] = result
        if mixes_labels(cfg):
            self.mixing.append(key)

    @property
    def built_mixing(self):
        return [key for key in self.mixing if key in self.built]

    def refused_whatever_the_loss(self, key):
        """Refused for its head type, or a distillation head that
        mmpretrain cannot train either."""
        return key in self.refused and (
            self.heads[key] in REFUSED
            or 'distillation=True' in self.refused[key])


@pytest.fixture(scope='module')
def zoo():
    register_all_modules(init_default_scope=False)
    parsed = parsed_zoo('mmpretrain')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small helper tensors, busy 2-core CPU
    walk = Walk()
    try:
        with DefaultScope.overwrite_default_scope('mmpretrain'), quiet():
            for path in zoo_configs():
                walk.visit(path, parsed[str(path)])
    finally:
        torch.set_num_threads(threads)
    print(summary(walk))
    return walk


def summary(walk):
    def by_reason(reasons):
        counts = collections.Counter(reasons)
        return [(f'  {reason}', n) for reason, n in sorted(
            counts.items(), key=lambda item: (-item[1], item[0]))]

    rows = [('configs', walk.configs),
            ('with an ISDA<head> entry', walk.supported),
            ('built', len(walk.built)),
            ('  of which mixing labels', len(walk.built_mixing)),
            ('refused', len(walk.refused)), *by_reason(walk.refused.values()),
            ('unbuildable on meta, stock too', len(walk.unbuildable)),
            *by_reason(walk.unbuildable.values()),
            ('broken by ISDA', len(walk.broken)),
            *by_reason(walk.broken.values()),
            ('skipped', len(walk.skipped)), *by_reason(walk.skipped.values()),
            ('not applicable', sum(walk.not_applicable.values())),
            *[(f'  {kind}', n) for kind, n in
              walk.not_applicable.most_common()]]
    lines = [f'\nmmpretrain {mmpretrain.__version__} zoo: {ZOO_DIR}']
    lines += [f'{n:>5}  {label}' for label, n in rows]
    return '\n'.join(lines)


def test_walk_agrees_with_isda_config(zoo):
    """The tool's zoo walk finds the same files and gives each config the
    verdict that matches this walk's bucket."""
    assert zoo.configs >= 500
    tool = walk_zoo('mmpretrain', parsed_zoo('mmpretrain'))
    verdicts = dict(tool.verdicts, **dict.fromkeys(tool.unparsed,
                                                   'unparsed'))
    assert tool.crashed == {}
    assert sorted(verdicts) == sorted(zoo.buckets)
    assert tool.configs == zoo.configs
    differences = {key: (bucket, verdicts[key])
                   for key, bucket in zoo.buckets.items()
                   if VERDICT[bucket] != verdicts[key]}
    assert differences == KNOWN_DIFFERENCES


def test_known_configs_in_their_buckets(zoo):
    known = {
        'resnet/resnet50_8xb32_in1k.py': 'built',
        'convnext/convnext-tiny_32xb128_in1k.py': 'built',
        'deit/deit-tiny_4xb256_in1k.py': 'built',
        'conformer/conformer-tiny-p16_8xb128_in1k.py': 'built',
        # The backbone classifies: ClsHead.
        'vgg/vgg16_8xb32_in1k.py': 'refused',
        # Sigmoid losses have no ISDA bound (the zoo's ResNet-50 Mixup
        # recipe scores the mixed labels as multi-label).
        'csra/resnet101-csra_1xb16_voc07-448px.py': 'refused',
        'resnet/resnet50_8xb32-mixup_in1k.py': 'refused',
        'levit/deploy/levit-128s_8xb256_in1k.py': 'unbuildable',
        'mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py':
        'not applicable',
        # BLIP-2's LinearClsHead is a neck, not its model.head.
        'blip2/blip2_8xb32_retrieval.py': 'not applicable',
    }
    assert {key: zoo.buckets[key] for key in known} == known
    assert 'convnext/convnext-tiny_32xb128_in1k.py' in zoo.built_mixing
    assert 'resnet/resnet50_8xb32-mixup_in1k.py' in zoo.mixing
    assert 'resnet/resnet50_8xb32_in1k.py' not in zoo.mixing


def test_supported_heads_build_or_are_refused(zoo):
    """Every config with a supported head that parses builds with the ISDA
    head or is refused, but for those the stock config cannot build."""
    assert zoo.broken == {}
    # LoRAModel calls init_weights in its constructor: that fails on meta
    # weights, and on real ones it would load its checkpoint=''. LeViT's
    # deploy=True head calls switch_to_deploy(self) with one argument too
    # many (mmpretrain 1.2.0).
    assert set(zoo.unbuildable) <= {
        'vision_transformer/vit-base-p16_8xb64-lora_in1k-384px.py',
        *(f'levit/deploy/levit-{arch}_8xb256_in1k.py'
          for arch in ('128s', '128', '192', '256', '384'))}
    assert len(zoo.built) >= 350


def test_refused_only_without_softmax(zoo):
    softmax = {key: zoo.refused[key] for key in zoo.refused
               if is_softmax(zoo.losses[key])
               and not zoo.refused_whatever_the_loss(key)}
    assert softmax == {}


def test_refused_heads_refused(zoo):
    of_refused_type = [key for key, kind in zoo.heads.items()
                       if kind in REFUSED]
    assert len(of_refused_type) >= 10  # ClsHead, CSRA, ArcFace, ...
    for key in of_refused_type:
        kind = zoo.heads[key]
        assert zoo.refused[key].startswith(f'ISDA{kind}: {kind} ')


def test_mixup_cutmix_recipes_build(zoo):
    not_built = [key for key in zoo.mixing
                 if key not in zoo.built and is_softmax(zoo.losses[key])
                 and not zoo.refused_whatever_the_loss(key)
                 and key not in zoo.unbuildable]
    assert not_built == []
    assert len(zoo.built_mixing) >= 100


def test_no_weights_allocated(zoo):
    heavy = {key: n for key, n in zoo.built.items()
             if n > MAX_REAL_PARAMETERS}
    assert heavy == {}

"""``isda-config``: write the ISDA twin of an OpenMMLab config.

Usage::

    isda-config CONFIG [--out PATH] [--lambda0 X] [--covariance KIND]
                [--dry-run] [--force]
    isda-config --zoo mmpretrain mmseg mmdet     # coverage table (Markdown)

(``python tools/isda_config.py ...`` is the same command.) ``CONFIG`` is a
classic (``_base_``-style) config file, or a zoo config by scope such as
``mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py``.

What it does:

1. **Find the classifier heads.** ``cfg.model`` is walked recursively; a
   head is any dict whose ``type`` names a module of the toolkit's
   ``MODELS`` registry (the config's ``default_scope``, or a ``scope.``
   prefix) for which ``'ISDA' + type`` is registered too. Support is read
   from the registries at run time, never from a list kept here. A head's
   own arguments are not searched further.
2. **Decide each head by building it.** ``ISDA<type>`` is built from the
   head's own config, weights on the meta device (cheap for any size):
   it builds -> ISDA is enabled; it raises ``ValueError`` or ``TypeError``
   while the stock head builds -> refused, with the first sentence of the
   error (why, and what to use instead). An ``ISDA<type>`` entry that is
   not a class (how ``isda_mm`` registers heads that have no ISDA bound)
   refuses whatever the stock head does. Otherwise, if the stock head
   cannot be built from its config alone either (arguments its parent
   injects, a missing optional package), or the twin fails with another
   error, the head is *undecided*.
3. **Choose the ISDA settings** (``--lambda0`` and ``--covariance`` override
   both rules):

   * mmpretrain: ImageNet-scale heads (``num_classes >= 1000``) get the
     paper's ImageNet setting, ``lambda0=7.5`` with a diagonal covariance;
     other heads get the paper's CIFAR setting, ``lambda0=0.5`` with a full
     covariance, unless the full covariances would take more than 1 GiB
     (``num_classes * width**2`` float32 values, summed over the head's
     classifiers), where the covariance is diagonal.
   * mmseg: ``lambda0=7.5``, diagonal (the paper's Cityscapes setting), on
     every decode and auxiliary head.
   * mmdet: ``lambda0=0.5``, diagonal, on each RoI bbox head (every cascade
     stage).
   * any other toolkit: the twin's own defaults (only ``type`` changes).
4. **Write a thin child config** with ``_base_`` (the original's path
   relative to the output file, or the scope path as given),
   ``custom_imports`` with ``isda_mm`` added to the original's imports, and
   only ``type``, ``lambda0`` and ``covariance`` of each enabled head, at
   their place in ``model``. mmengine replaces lists wholesale, so a list
   that holds an enabled head (cascade stages, lists of decode heads) is
   written out whole. Before it is written, the twin is loaded back with
   ``Config.fromfile`` and checked to equal the original with exactly those
   fields changed.

Output name (``--out`` overrides; an existing file is kept unless
``--force``): next to a config file, or in the current directory for a scope
path, named OpenMMLab-style as this repository names its ISDA configs (see
:func:`twin_name`): ``-isda`` follows the GPUs x batch field
(``resnet50_8xb32_in1k`` -> ``resnet50_8xb32-isda_in1k``,
``deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024`` ->
``deeplabv3_r50-d8_4xb2-isda-40k_cityscapes-512x1024``); without one,
``isda-`` opens the schedule field before the dataset
(``faster-rcnn_r50_fpn_1x_coco`` -> ``faster-rcnn_r50_fpn_isda-1x_coco``);
names of fewer than three fields get ``_isda``.

Exit status: 0 if at least one head got ISDA (and the twin was written or,
with ``--dry-run``, printed), 1 if none could (heads found but all refused
or undecided, or no classifier head found; the report says which), 2 for
usage errors (bad arguments, a config that cannot be read, an output that
exists).

This module imports no toolkit (nor torch or mmengine) until it is used;
``import isda_mm`` itself registers the ISDA heads of the installed
toolkits.
"""
import argparse
import contextlib
import copy
import dataclasses
import importlib
import importlib.util
import keyword
import logging
import os
import os.path as osp
import re
import sys
import tempfile
import textwrap
import time
import warnings
from collections import Counter
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence, Tuple

COVARIANCES = ('full', 'diagonal')
# Above this many bytes of full covariances, mmpretrain heads go diagonal.
FULL_COVARIANCE_LIMIT = 1 << 30
IMAGENET_SCALE = 1000
# Fixed ISDA settings of the dense-prediction toolkits (README's table).
FIXED_SETTINGS = {
    'mmseg': dict(lambda0=7.5, covariance='diagonal'),
    'mmdet': dict(lambda0=0.5, covariance='diagonal'),
}
# Abbreviations whose full stop ends no sentence.
_SENTENCE_END = re.compile(
    r'(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)\.(?=\s|$)')
_GPUS_X_BATCH = re.compile(r'^\d+xb\d+')

HeadPath = Tuple[Any, ...]  # keys and list indices from cfg.model


# ---------------------------------------------------------------- naming


def twin_name(stem: str) -> str:
    """The ISDA twin's file stem, OpenMMLab-style
    (``{algorithm}_{components}_{training setting}_{dataset}``).

    ``-isda`` goes right after the first GPUs x batch field (``8xb32``,
    ``4xb2-40k`` -> ``4xb2-isda-40k``); without one, ``isda-`` opens the
    field before the dataset, the schedule (``..._fpn_1x_coco`` ->
    ``..._fpn_isda-1x_coco``); a stem of fewer than three fields gets
    ``_isda``.
    """
    fields = stem.split('_')
    for i, field in enumerate(fields):
        match = _GPUS_X_BATCH.match(field)
        if match and i > 0:
            end = match.end()
            fields[i] = field[:end] + '-isda' + field[end:]
            return '_'.join(fields)
    if len(fields) >= 3:
        fields[-2] = 'isda-' + fields[-2]
        return '_'.join(fields)
    return stem + '_isda'


def default_output(config: str, cwd: Optional[str] = None) -> str:
    """Where the twin of ``config`` goes without ``--out``: next to a
    config file, in ``cwd`` (default: the current directory) for a scope
    path, named by :func:`twin_name`."""
    name = config.partition('::')[2] if '::' in config else config
    stem, ext = osp.splitext(osp.basename(name))
    folder = (cwd or os.getcwd()) if '::' in config else osp.dirname(
        osp.abspath(config))
    return osp.join(folder, twin_name(stem) + (ext or '.py'))


def base_reference(config: str, out: str) -> str:
    """``_base_`` of the twin written to ``out``: the scope path as given,
    or the original's path relative to the twin's folder."""
    if '::' in config:
        return config
    rel = osp.relpath(osp.abspath(config), osp.dirname(osp.abspath(out)))
    rel = rel.replace(os.sep, '/')
    return rel if rel.startswith('.') else './' + rel


# ---------------------------------------------------------- config input


def resolve_config(config: str) -> Tuple[str, Optional[str]]:
    """The file behind ``config`` and the scope its path names, if any
    (``mmdet::...`` is looked up in the installed mmdet's zoo)."""
    from mmengine.config import Config
    if '::' in config:
        path, scope = Config._get_cfg_path(config, '')
        return path, scope
    if not osp.isfile(config):
        raise FileNotFoundError(f'no such config file: {config}')
    return osp.abspath(config), None


def load_config(path: str):
    """Parse a classic config (``_base_`` inheritance), importing nothing
    it names; the twin's ``_base_`` cannot inherit a lazy-import config."""
    from mmengine.config import Config
    return Config.fromfile(path, import_custom_modules=False,
                           lazy_import=False)


def plain(value: Any) -> Any:
    """``value`` with every ConfigDict a dict (tuples and lists kept)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def zoo_scope(path: str) -> Optional[str]:
    """The package whose installed zoo (``<pkg>/.mim/configs``) holds
    ``path``, if any."""
    parts = osp.abspath(path).split(os.sep)
    if '.mim' in parts:
        i = parts.index('.mim')
        if i > 0:
            return parts[i - 1]
    return None


# --------------------------------------------------------------- toolkits


@dataclasses.dataclass
class Toolkit:
    """A toolkit's ``MODELS`` registry, by its scope."""
    scope: str
    registry: Any

    def has(self, name: str) -> bool:
        """Whether ``name`` is registered here (not in a parent or child
        registry)."""
        return name in self.registry.module_dict


@lru_cache(maxsize=None)
def toolkit(scope: Optional[str]) -> Optional[Toolkit]:
    """The toolkit of ``scope`` with all its modules and ``isda_mm``'s
    registered, or None if it is not installed."""
    if not scope or importlib.util.find_spec(scope) is None:
        return None
    import isda_mm  # noqa: F401  (registers the ISDA heads)
    try:
        registry = importlib.import_module(f'{scope}.registry').MODELS
    except (ImportError, AttributeError):
        return None
    try:
        utils = importlib.import_module(f'{scope}.utils')
    except ImportError:
        utils = None
    register = getattr(utils, 'register_all_modules', None)
    if register is not None:
        with quiet():
            register(init_default_scope=False)
    return Toolkit(scope, registry)


def head_twin(kind: Any, scope: str) -> Optional[Tuple[str, str]]:
    """``(stock type, ISDA type)`` as written in the config, if ``kind``
    names a module of its toolkit that has an ``ISDA`` twin there."""
    if not isinstance(kind, str):
        return None
    prefix, dot, name = kind.rpartition('.')
    kit = toolkit(prefix if dot else scope)
    if kit is None or not kit.has(name) or not kit.has('ISDA' + name):
        return None
    return kind, f'{prefix}{dot}ISDA{name}'


def find_heads(model: Any, scope: str,
               at: HeadPath = ()) -> List[HeadPath]:
    """Paths (from ``cfg.model``) of every classifier head: a dict whose
    type has an ISDA twin registered. Heads' own arguments are not
    searched."""
    found = []
    if isinstance(model, dict):
        if head_twin(model.get('type'), scope):
            return [at]
        for key, value in model.items():
            found += find_heads(value, scope, at + (key, ))
    elif isinstance(model, (list, tuple)):
        for i, value in enumerate(model):
            found += find_heads(value, scope, at + (i, ))
    return found


def isda_heads(model: Any, scope: str,
               at: HeadPath = ()) -> List[HeadPath]:
    """Paths of heads that already are ISDA twins (``ISDA<type>`` whose
    stock ``<type>`` is registered)."""
    found = []
    if isinstance(model, dict):
        kind = model.get('type')
        if isinstance(kind, str):
            prefix, dot, name = kind.rpartition('.')
            kit = toolkit(prefix if dot else scope)
            if (name.startswith('ISDA') and kit is not None
                    and kit.has(name) and kit.has(name[4:])):
                return [at]
        for key, value in model.items():
            found += isda_heads(value, scope, at + (key, ))
    elif isinstance(model, (list, tuple)):
        for i, value in enumerate(model):
            found += isda_heads(value, scope, at + (i, ))
    return found


def get_at(tree: Any, path: HeadPath) -> Any:
    """The value at ``path`` in nested dicts and lists."""
    for key in path:
        tree = tree[key]
    return tree


def path_text(path: HeadPath, root: str = 'model') -> str:
    """``model.roi_head.bbox_head[1]``."""
    text = root
    for key in path:
        text += f'[{key}]' if isinstance(key, int) else f'.{key}'
    return text


# --------------------------------------------------------------- building


@contextlib.contextmanager
def quiet():
    """Keep the toolkits' warnings and INFO logs out of the report."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        logger.setLevel(level)


@lru_cache(maxsize=None)
def _meta_mode_class() -> type:
    """A TorchFunctionMode that puts new weights on the meta device."""
    import torch
    from torch.overrides import TorchFunctionMode

    # The factories that allocate weights; linspace, arange and tensor stay
    # on the CPU, as modules read drop-path rates back with .item().
    factories = {
        torch.empty, torch.empty_strided, torch.zeros, torch.ones,
        torch.full, torch.rand, torch.randn, torch.randint
    }
    if hasattr(torch, 'empty_permuted'):
        factories.add(torch.empty_permuted)
    # Filling a meta tensor does nothing but costs time.
    inits = {getattr(torch.nn.init, f) for f in dir(torch.nn.init)
             if f.endswith('_') and not f.startswith('_')} | {
                 torch.Tensor.normal_, torch.Tensor.uniform_,
                 torch.Tensor.fill_, torch.Tensor.zero_,
                 torch.Tensor.erfinv_, torch.Tensor.clamp_}

    class MetaWeights(TorchFunctionMode):
        """``torch.device('meta')`` for weight factories only."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in inits:
                tensor = args[0] if args else kwargs.get('tensor')
                if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                    return tensor
            if func in factories and kwargs.get('device') is None:
                kwargs = dict(kwargs, device='meta')
            return func(*args, **kwargs)

    return MetaWeights


def meta_weights():
    """Context in which modules are built with their weights on the meta
    device (no memory, no initialisation)."""
    return _meta_mode_class()()


@contextlib.contextmanager
def one_thread():
    """Small helper tensors only: one torch thread is the fastest."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build_module(cfg: dict, scope: str):
    """Build ``cfg`` from ``scope``'s MODELS registry, weights on meta."""
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope
    kit = toolkit(scope)
    # As a Runner builds: heads read nested settings as attributes.
    with DefaultScope.overwrite_default_scope(scope), quiet(), \
            meta_weights():
        return kit.registry.build(ConfigDict(copy.deepcopy(cfg)))


def first_sentence(message: str) -> str:
    """The first sentence of an error message (the reason and, after a
    semicolon, what to use instead), without the ``ISDA<Head>:`` prefix."""
    text = ' '.join(str(message).split())
    text = re.sub(r'^ISDA\w+:\s*', '', text)
    match = _SENTENCE_END.search(text)
    return text[:match.start()] if match else text


def error_text(error: BaseException) -> str:
    """``Type: first sentence`` of an unexpected error."""
    return f'{type(error).__name__}: {first_sentence(error)}'


@dataclasses.dataclass
class Decision:
    """What becomes of one head: ``'enabled'`` (with ``settings``),
    ``'refused'`` or ``'undecided'`` (with ``reason``)."""
    outcome: str
    reason: str = ''
    settings: Dict[str, Any] = dataclasses.field(default_factory=dict)


def classifier_sizes(module) -> List[Tuple[int, int]]:
    """``(num_classes, feature width)`` of each ISDA statistics estimator
    in a built ISDA head."""
    from isda_mm.core import CovarianceEstimator
    return [(m.num_classes, m.feature_dim) for m in module.modules()
            if isinstance(m, CovarianceEstimator)]


def isda_settings(scope: str, sizes: Sequence[Tuple[int, int]],
                  lambda0: Optional[float] = None,
                  covariance: Optional[str] = None) -> Dict[str, Any]:
    """``lambda0`` and ``covariance`` for a head of ``scope`` whose
    classifiers have ``sizes``; the given values win (module docstring)."""
    if scope in FIXED_SETTINGS:
        chosen = dict(FIXED_SETTINGS[scope])
    elif scope == 'mmpretrain' and sizes:
        if max(c for c, _ in sizes) >= IMAGENET_SCALE:
            chosen = dict(lambda0=7.5, covariance='diagonal')
        else:
            full_bytes = sum(c * d * d * 4 for c, d in sizes)
            chosen = dict(lambda0=0.5, covariance='full'
                          if full_bytes <= FULL_COVARIANCE_LIMIT else
                          'diagonal')
    else:
        chosen = {}
    if lambda0 is not None:
        chosen['lambda0'] = lambda0
    if covariance is not None:
        chosen['covariance'] = covariance
    return chosen


def is_class_entry(name: str, scope: str) -> bool:
    """Whether registry entry ``name`` (``scope.`` prefix allowed) is a
    class; ``isda_mm`` registers heads without a twin as functions that
    raise the reason."""
    prefix, dot, name = name.rpartition('.')
    entry = toolkit(prefix if dot else scope).registry.module_dict[name]
    return isinstance(entry, type)


def _decide_head(head: dict, twin: str, scope: str,
                 overrides: Tuple[Tuple[str, Any], ...]) -> Decision:
    """:func:`decide_head`, uncached (the rules: module docstring, 2)."""
    given = dict(overrides)
    try:
        module = build_module(dict(head, type=twin, **given), scope)
    except Exception as isda_error:
        refusal = isinstance(isda_error, (ValueError, TypeError))
        if refusal and not is_class_entry(twin, scope):
            # An entry that only explains why there is no twin.
            return Decision('refused', first_sentence(isda_error))
        try:
            build_module(head, scope)
        except Exception as stock_error:
            return Decision(
                'undecided', 'the stock head does not build from its '
                f'config alone either ({error_text(stock_error)})')
        if refusal:
            return Decision('refused', first_sentence(isda_error))
        return Decision('undecided',
                        f'the ISDA head failed: {error_text(isda_error)}')
    settings = isda_settings(scope, classifier_sizes(module),
                             given.get('lambda0'), given.get('covariance'))
    return Decision('enabled', settings=settings)


_DECISIONS: Dict[str, Decision] = {}


def decide_head(head: dict, twin: str, scope: str,
                lambda0: Optional[float] = None,
                covariance: Optional[str] = None) -> Decision:
    """Decide one head by building ``twin`` with the head's arguments
    (weights on meta); cached by (scope, twin, arguments, overrides)."""
    overrides = tuple((k, v) for k, v in (('lambda0', lambda0),
                                          ('covariance', covariance))
                      if v is not None)
    key = repr((scope, twin, head, overrides))
    if key not in _DECISIONS:
        _DECISIONS[key] = _decide_head(head, twin, scope, overrides)
    return copy.deepcopy(_DECISIONS[key])


@dataclasses.dataclass
class Head:
    """One classifier head of a config and its decision."""
    path: HeadPath
    type: str
    twin: str
    decision: Decision


@dataclasses.dataclass
class ConfigDecision:
    """The heads of one config and what becomes of them."""
    scope: Optional[str]
    heads: List[Head]
    already_isda: List[HeadPath] = dataclasses.field(default_factory=list)
    problem: str = ''  # why no head could be looked for

    @property
    def enabled(self) -> List[Head]:
        """The heads that get ISDA."""
        return [h for h in self.heads if h.decision.outcome == 'enabled']

    @property
    def verdict(self) -> str:
        """``enabled``, ``refused`` (heads found, none enabled, some
        refused), ``undecided`` (heads found, none enabled or refused) or
        ``no head``."""
        if self.enabled:
            return 'enabled'
        if any(h.decision.outcome == 'refused' for h in self.heads):
            return 'refused'
        return 'undecided' if self.heads else 'no head'


def config_scope(cfg, fallback: Optional[str]) -> Optional[str]:
    """The toolkit of a config: its ``default_scope``, else ``fallback``."""
    scope = cfg.get('default_scope')
    return scope if isinstance(scope, str) and scope else fallback


def decide(cfg, fallback_scope: Optional[str] = None,
           lambda0: Optional[float] = None,
           covariance: Optional[str] = None) -> ConfigDecision:
    """Find the classifier heads of a parsed config and decide each."""
    scope = config_scope(cfg, fallback_scope)
    model = plain(cfg.get('model'))
    if toolkit(scope) is None:
        why = (f'toolkit {scope!r} is not installed' if scope else
               'the config names no toolkit (default_scope)')
        return ConfigDecision(scope, [], problem=why)
    if not isinstance(model, dict):
        return ConfigDecision(scope, [], problem='the config has no model')
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        with quiet():
            import_modules_from_strings(**cfg['custom_imports'])
    heads = []
    with one_thread():
        for path in find_heads(model, scope):
            head = get_at(model, path)
            stock, twin = head_twin(head['type'], scope)
            heads.append(
                Head(path, stock, twin,
                     decide_head(head, twin, scope, lambda0, covariance)))
    return ConfigDecision(scope, heads, isda_heads(model, scope))


# ----------------------------------------------------------------- output


def twin_model(model: dict, heads: Sequence[Head]) -> dict:
    """``model`` with each enabled head's ``type`` and settings changed."""
    model = copy.deepcopy(model)
    for head in heads:
        if head.decision.outcome == 'enabled':
            target = get_at(model, head.path)
            target['type'] = head.twin
            target.update(head.decision.settings)
    return model


def child_fields(old: Any, new: Any) -> Any:
    """What a child config must write so that mmengine's merge turns
    ``old`` into ``new``: dicts merge key by key, so only changed keys;
    lists, tuples and other values replace the base's whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {key: child_fields(old.get(key), value)
                for key, value in new.items()
                if key not in old or old[key] != value}
    return new


def twin_imports(custom_imports: Any) -> dict:
    """The original's ``custom_imports`` with ``isda_mm`` added."""
    custom_imports = dict(plain(custom_imports or {}))
    imports = custom_imports.get('imports') or []
    imports = [imports] if isinstance(imports, str) else list(imports)
    if 'isda_mm' not in imports:
        imports.append('isda_mm')
    custom_imports['imports'] = imports
    custom_imports.setdefault('allow_failed_imports', False)
    return custom_imports


def format_value(value: Any, indent: int = 0, start: int = 0,
                 tail: int = 0, width: int = 79) -> str:
    """Python source of a config value, ``dict(...)`` style: on one line
    if it fits between column ``start`` and ``width`` (less ``tail``
    closing characters), else one item per line, indented by 4 from the
    line's ``indent``."""
    if isinstance(value, dict):
        named = all(isinstance(k, str) and k.isidentifier()
                    and not keyword.iskeyword(k) for k in value)
        keys = [f'{k}=' if named else f'{k!r}: ' for k in value]
        opener, closer = ('dict(', ')') if named else ('{', '}')
        items = list(zip(keys, value.values()))
        trailer = ''
    elif isinstance(value, (list, tuple)):
        opener, closer = ('[', ']') if isinstance(value, list) else ('(',
                                                                     ')')
        items = [('', v) for v in value]
        trailer = ',' if isinstance(value, tuple) and len(value) == 1 else ''
    else:
        return _scalar(value)
    line = opener + ', '.join(
        k + format_value(v, width=1 << 30) for k, v in items) + trailer
    if start + len(line) + 1 + tail <= width or not items:
        return line + closer
    inner = indent + 4
    lines = []
    for i, (k, v) in enumerate(items):
        last = i == len(items) - 1
        lines.append(' ' * inner + k + format_value(
            v, inner, inner + len(k), 1 + tail if last else 1, width))
    return opener + '\n' + ',\n'.join(lines) + trailer + closer


def _scalar(value: Any) -> str:
    """Python source of a config leaf value."""
    if isinstance(value, float) and value != value:
        return "float('nan')"
    if isinstance(value, float) and value in (float('inf'), -float('inf')):
        return f"float('{value}')"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f'cannot write a config value of type '
                    f'{type(value).__name__}: {value!r}')


def render_twin(base: str, custom_imports: dict, model_fields: dict,
                heads: Sequence[Head]) -> str:
    """The twin config's source."""
    enabled = [h for h in heads if h.decision.outcome == 'enabled']
    lines = [f'ISDA twin of {base}, written by isda-config '
             f'(isda_mm.twin): ISDA on '
             + ', '.join(path_text(h.path) for h in enabled) + '.']
    for head in heads:
        if head.decision.outcome != 'enabled':
            lines.append(f'Kept stock: {path_text(head.path)} '
                         f'({head.type}): {head.decision.reason}.')
    if any(isinstance(k, int) for h in enabled for k in h.path):
        lines.append('mmengine replaces lists wholesale, so each list that '
                     'holds an ISDA head is written out whole.')
    text = '\n'.join(
        textwrap.fill(line, 77, initial_indent='# ',
                      subsequent_indent='# ', break_on_hyphens=False,
                      break_long_words=False)
        for line in lines)
    return (f'{text}\n_base_ = [{base!r}]\n'
            f'custom_imports = {format_value(custom_imports, 0, 17)}\n'
            f'model = {format_value(model_fields, 0, 8)}\n')


def without_scope_keys(value: Any) -> Any:
    """``value`` without the ``_scope_`` keys mmengine adds to a scoped
    base's dicts."""
    if isinstance(value, dict):
        return {k: without_scope_keys(v) for k, v in value.items()
                if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(without_scope_keys(v) for v in value)
    return value


def check_twin(text: str, base_path: str, expected: dict) -> None:
    """Load ``text`` (its ``_base_`` pointed at ``base_path``) with
    ``Config.fromfile`` and check that it merges to ``expected``."""
    from mmengine.config import Config
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'isda_twin.py')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(re.sub(r'^_base_ = .*$', f'_base_ = [{base_path!r}]',
                           text, count=1, flags=re.M))
        merged = Config.fromfile(path, import_custom_modules=False,
                                 lazy_import=False)
    got = without_scope_keys(plain(merged.to_dict()))
    want = without_scope_keys(expected)
    if got != want:
        keys = sorted(k for k in got.keys() | want.keys()
                      if got.get(k) != want.get(k))
        raise RuntimeError('the written twin does not merge to the original '
                           f'with only the ISDA fields changed (differs in '
                           f'{keys})')


def make_twin(cfg, decision: ConfigDecision, base: str,
              base_path: str) -> str:
    """The twin's source, checked by loading it back."""
    model = plain(cfg['model'])
    new_model = twin_model(model, decision.heads)
    imports = twin_imports(cfg.get('custom_imports'))
    text = render_twin(base, imports, child_fields(model, new_model),
                       decision.heads)
    expected = plain(cfg.to_dict())
    expected['model'] = new_model
    expected['custom_imports'] = {
        **plain(cfg.get('custom_imports') or {}), **imports}
    check_twin(text, base_path, expected)
    return text


# ----------------------------------------------------------------- report


def head_line(head: Head) -> str:
    """One line of the per-head report."""
    where = f'{path_text(head.path)} ({head.type})'
    decision = head.decision
    if decision.outcome == 'enabled':
        settings = ', '.join(f'{k}={v!r}'
                             for k, v in decision.settings.items())
        return f'  ISDA  {where} -> {head.twin}' + (
            f' ({settings})' if settings else '')
    label = 'stock' if decision.outcome == 'refused' else '????'
    return f'  {label} {where}: {decision.outcome}: {decision.reason}'


def report(config: str, decision: ConfigDecision) -> List[str]:
    """The per-head report of one config."""
    lines = [f'{config} ({decision.scope or "no toolkit"}): '
             f'{len(decision.heads)} classifier head(s), '
             f'{len(decision.enabled)} with ISDA']
    lines += [head_line(h) for h in decision.heads]
    if not decision.heads:
        why = decision.problem or 'no head of the model has an ISDA twin'
        lines.append(f'  no classifier head found: {why}')
        if decision.already_isda:
            lines.append('  (already ISDA: ' + ', '.join(
                path_text(p) for p in decision.already_isda) + ')')
    elif not decision.enabled:
        lines.append('  no head can take ISDA: all were refused or '
                     'undecided')
    return lines


# --------------------------------------------------------------- zoo walk


@contextlib.contextmanager
def fast_parsing():
    """Parse each base file once (mmengine parses a base again for every
    config that inherits it; a file parses the same whoever asks), look up
    each scoped path (``mmdet::...``, a YAML metafile search) once, and
    keep mmengine's temporary files in memory (/dev/shm) where it can."""
    from unittest import mock

    from mmengine.config import Config
    parse, locate = Config._file2dict, Config._get_cfg_path
    parsed, located, depth = {}, {}, [0]

    def file2dict(filename, *args, **kwargs):
        key = (osp.abspath(filename), args, tuple(sorted(kwargs.items())))
        if key in parsed:
            return copy.deepcopy(parsed[key])
        depth[0] += 1
        try:
            result = parse(filename, *args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0]:  # a base: keep it for the next config that needs it
            parsed[key] = result
            return copy.deepcopy(result)
        return result

    def get_cfg_path(cfg_path, filename):
        if '::' not in cfg_path:
            return locate(cfg_path, filename)
        if cfg_path not in located:
            located[cfg_path] = locate(cfg_path, filename)
        return located[cfg_path]

    saved_tempdir = tempfile.tempdir
    if os.access('/dev/shm', os.W_OK):
        tempfile.tempdir = '/dev/shm'
    try:
        with mock.patch.object(Config, '_file2dict',
                               staticmethod(file2dict)), \
                mock.patch.object(Config, '_get_cfg_path',
                                  staticmethod(get_cfg_path)):
            yield
    finally:
        tempfile.tempdir = saved_tempdir


def zoo_dir(package: str) -> str:
    """``<package>/.mim/configs`` of an installed toolkit."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f'{package} is not installed')
    return osp.join(osp.dirname(spec.origin), '.mim', 'configs')


def zoo_configs(package: str) -> List[str]:
    """Every config of a toolkit's zoo but its ``_base_`` files, sorted."""
    root = zoo_dir(package)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != '_base_']
        found += [osp.join(folder, f) for f in files if f.endswith('.py')]
    return sorted(found)


@dataclasses.dataclass
class ZooStats:
    """Outcome of every config of one toolkit's zoo."""
    package: str
    version: str = ''
    configs: int = 0
    verdicts: Dict[str, str] = dataclasses.field(default_factory=dict)
    refused: Counter = dataclasses.field(default_factory=Counter)
    undecided: Counter = dataclasses.field(default_factory=Counter)
    enabled_heads: Counter = dataclasses.field(default_factory=Counter)
    reasons: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
    unparsed: Dict[str, str] = dataclasses.field(default_factory=dict)
    crashed: Dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def count(self, verdict: str) -> int:
        """Configs with this verdict."""
        return sum(v == verdict for v in self.verdicts.values())

    @property
    def with_head(self) -> int:
        """Configs in which a classifier head was found."""
        return sum(v != 'no head' for v in self.verdicts.values())


def walk_zoo(package: str) -> ZooStats:
    """Parse and decide (no model built, nothing written) every config of
    ``package``'s zoo. A refused config counts once under each distinct
    refusal reason of its heads; ``reasons`` keeps each refused or
    undecided config's reasons."""
    start, cpu = time.perf_counter(), time.process_time()
    root = zoo_dir(package)
    stats = ZooStats(package, getattr(importlib.import_module(package),
                                      '__version__', ''))
    with fast_parsing(), quiet():
        for path in zoo_configs(package):
            name = osp.relpath(path, root)
            stats.configs += 1
            try:
                cfg = load_config(path)
            except Exception as e:
                stats.unparsed[name] = error_text(e).replace(root + os.sep,
                                                             '')
                continue
            try:
                decision = decide(cfg, package)
            except ImportError as e:  # its custom_imports
                stats.unparsed[name] = error_text(e)
                continue
            except Exception as e:  # a bug of the tool
                stats.crashed[name] = error_text(e)
                continue
            stats.verdicts[name] = decision.verdict
            if decision.verdict == 'enabled':
                stats.enabled_heads.update(
                    {h.twin for h in decision.enabled})
            elif decision.verdict in ('refused', 'undecided'):
                reasons = [h.decision.reason for h in decision.heads
                           if h.decision.outcome == decision.verdict]
                stats.reasons[name] = reasons
                getattr(stats, decision.verdict).update(set(reasons))
    stats.seconds = time.perf_counter() - start
    stats.cpu_seconds = time.process_time() - cpu
    return stats


def _cell(text: str) -> str:
    """``text`` for a Markdown table cell."""
    return text.replace('|', '\\|')


def coverage_table(walks: Sequence[ZooStats]) -> str:
    """Markdown tables of a zoo walk: counts per toolkit, then the
    reasons."""
    lines = [
        '| toolkit | configs | classifier head found | ISDA enabled | '
        'refused | undecided | no classifier head | unparsed |',
        '|---|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for s in walks:
        lines.append(
            f'| {s.package} {s.version} | {s.configs} | {s.with_head} | '
            f"{s.count('enabled')} | {s.count('refused')} | "
            f"{s.count('undecided')} | {s.count('no head')} | "
            f'{len(s.unparsed) + len(s.crashed)} |')
    sections = [
        ('Configs with ISDA, by ISDA head', 'ISDA head',
         lambda s: s.enabled_heads),
        ('Refused configs, by reason (a config counts once per reason of '
         'its heads)', 'reason', lambda s: s.refused),
        ('Undecided configs, by reason', 'reason', lambda s: s.undecided),
        ('Unparsed configs, by reason', 'reason',
         lambda s: Counter(list(s.unparsed.values())
                           + list(s.crashed.values()))),
    ]
    for title, column, counts in sections:
        rows = [(s.package, n, reason) for s in walks
                for reason, n in sorted(counts(s).items(),
                                        key=lambda item: (-item[1], item[0]))]
        if rows:
            lines += ['', f'{title}:', '',
                      f'| toolkit | configs | {column} |', '|---|---:|---|']
            lines += [f'| {p} | {n} | {_cell(r)} |' for p, n, r in rows]
    return '\n'.join(lines)


# -------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``isda-config``."""

    def non_negative(text):
        value = float(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f'must be >= 0, got {text}')
        return value

    parser = argparse.ArgumentParser(
        prog='isda-config',
        description='Write the ISDA twin of an OpenMMLab config: every '
        'classifier head that has an ISDA twin gets it (type, lambda0, '
        'covariance), as a thin child config.',
        epilog='Exit status: 0 if a head got ISDA, 1 if none could, 2 for '
        'usage errors.')
    parser.add_argument(
        'config', nargs='?',
        help='config file, or zoo config by scope '
        '(mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py)')
    parser.add_argument(
        '--out', help='twin config path (default: next to CONFIG, or in the '
        'current directory for a scope path, with "-isda" in its name)')
    parser.add_argument('--lambda0', type=non_negative,
                        help='lambda0 of every ISDA head (default: per '
                        'toolkit; see the module docstring)')
    parser.add_argument('--covariance', choices=COVARIANCES,
                        help='covariance of every ISDA head (default: per '
                        'toolkit)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the twin instead of writing it')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing output file')
    parser.add_argument(
        '--zoo', nargs='+', metavar='PACKAGE',
        help='instead of CONFIG: walk the installed zoos of these toolkits '
        '(e.g. mmpretrain mmseg mmdet) and print the Markdown coverage '
        'table')
    return parser


def run_zoo(packages: Sequence[str], out=sys.stdout) -> int:
    """``--zoo``: walk the zoos, print the coverage table."""
    walks = []
    for package in packages:
        walks.append(walk_zoo(package))
        print(f'{package}: {walks[-1].configs} configs in '
              f'{walks[-1].seconds:.1f} s ({walks[-1].cpu_seconds:.1f} s '
              'CPU)', file=sys.stderr)
    print(coverage_table(walks), file=out)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``isda-config`` and ``tools/isda_config.py``; returns
    the exit status (argparse exits with 2 itself)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.zoo:
        if args.config or args.out:
            parser.error('--zoo takes no CONFIG or --out')
        for package in args.zoo:
            if importlib.util.find_spec(package) is None:
                parser.error(f'{package} is not installed')
        return run_zoo(args.zoo)
    if not args.config:
        parser.error('CONFIG is required (or --zoo PACKAGE ...)')
    out = args.out or default_output(args.config)
    if not args.dry_run and osp.exists(out) and not args.force:
        parser.error(f'{out} exists; pass --force to overwrite it, or --out')
    try:
        path, scope = resolve_config(args.config)
        with quiet():
            cfg = load_config(path)
    except Exception as e:
        parser.error(f'cannot read {args.config}: {error_text(e)}')
    try:
        decision = decide(cfg, scope or zoo_scope(path), args.lambda0,
                          args.covariance)
    except ImportError as e:  # the config's custom_imports
        parser.error(f'cannot import the custom_imports of {args.config}: '
                     f'{error_text(e)}')
    print('\n'.join(report(args.config, decision)))
    if not decision.enabled:
        return 1
    base = base_reference(args.config, out)
    try:
        with quiet():
            text = make_twin(cfg, decision, base,
                             args.config if scope else path)
    except (RuntimeError, TypeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if args.dry_run:
        print(f'--- {out} (not written)\n{text}', end='')
        return 0
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        f.write(text)
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Deciding each head by building it (step 2 of ``isda-config``).

``ISDA<type>`` is built from the head's own config, weights on the meta
device (cheap for any size): it builds -> ISDA is enabled; it raises
``ValueError`` or ``TypeError`` while the stock head builds -> refused, with
the first sentence of the error (why, and what to use instead). An
``ISDA<type>`` entry that is not a class (how ``isda_mm`` registers heads
that have no ISDA bound) refuses whatever the stock head does. Otherwise,
if the stock head cannot be built from its config alone either (arguments
its parent injects, a missing optional package), or the twin fails with
another error, the head is *undecided*. The settings of an enabled head
(:mod:`.settings`) follow from its classifiers' sizes and, for
ImageNet-scale mmpretrain heads, the config's ``model.backbone``.
"""
import copy
import dataclasses
import re
from typing import Any, Dict, List, Optional, Tuple

from .heads import (
    HeadPath,
    config_scope,
    find_heads,
    get_at,
    head_twin,
    isda_heads,
    toolkit,
)
from .meta import meta_weights, one_thread, quiet
from .parsing import plain
from .settings import classifier_sizes, isda_settings

# Abbreviations whose full stop ends no sentence.
_SENTENCE_END = re.compile(
    r'(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)\.(?=\s|$)')


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


def build_module(cfg: dict, scope: str):
    """Build ``cfg`` from ``scope``'s MODELS registry, weights on meta.

    Args:
        cfg (dict): the module's config (not changed).
        scope (str): the toolkit whose registry builds it.

    Returns:
        torch.nn.Module: the module, its weights on the meta device.
    """
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope
    kit = toolkit(scope)
    # As a Runner builds: heads read nested settings as attributes.
    with DefaultScope.overwrite_default_scope(scope), quiet(), \
            meta_weights():
        return kit.registry.build(ConfigDict(copy.deepcopy(cfg)))


@dataclasses.dataclass
class Decision:
    """What becomes of one head.

    Args:
        outcome (str): ``'enabled'``, ``'refused'`` or ``'undecided'``.
        reason (str): why not, for the last two. Defaults to ''.
        settings (dict): ISDA settings to write, if enabled.
        sizes (list[tuple[int, int]]): ``(num_classes, width)`` of each
            classifier of the built twin, if enabled.
    """
    outcome: str
    reason: str = ''
    settings: Dict[str, Any] = dataclasses.field(default_factory=dict)
    sizes: List[Tuple[int, int]] = dataclasses.field(default_factory=list)


def is_class_entry(name: str, scope: str) -> bool:
    """Whether registry entry ``name`` (``scope.`` prefix allowed) is a
    class; ``isda_mm`` registers heads without a twin as functions that
    raise the reason."""
    prefix, dot, name = name.rpartition('.')
    entry = toolkit(prefix if dot else scope).registry.module_dict[name]
    return isinstance(entry, type)


def _decide_head(head: dict, twin: str, scope: str,
                 overrides: Tuple[Tuple[str, Any], ...]) -> Decision:
    """:func:`decide_head`, uncached and without the settings (the rules:
    module docstring)."""
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
    return Decision('enabled', sizes=classifier_sizes(module))


_DECISIONS: Dict[str, Decision] = {}


def decide_head(head: dict, twin: str, scope: str,
                lambda0: Optional[float] = None,
                covariance: Optional[str] = None,
                backbone: Optional[dict] = None) -> Decision:
    """Decide one head by building ``twin`` with the head's arguments
    (weights on meta), then choose its settings; the build is cached by
    (scope, twin, arguments, overrides), as most zoo configs share their
    heads with others.

    Args:
        head (dict): the head's config, stock type.
        twin (str): the ISDA type to build.
        scope (str): the head's toolkit.
        lambda0 (float, optional): ``--lambda0``. Defaults to None.
        covariance (str, optional): ``--covariance``. Defaults to None.
        backbone (dict, optional): the config's ``model.backbone``, for
            the paper's ImageNet ``lambda0`` of its family. Defaults to
            None.

    Returns:
        Decision: a copy of the (cached) decision, with its settings.
    """
    overrides = tuple((k, v) for k, v in (('lambda0', lambda0),
                                          ('covariance', covariance))
                      if v is not None)
    key = repr((scope, twin, head, overrides))
    if key not in _DECISIONS:
        _DECISIONS[key] = _decide_head(head, twin, scope, overrides)
    decision = copy.deepcopy(_DECISIONS[key])
    if decision.outcome == 'enabled':
        decision.settings = isda_settings(scope, decision.sizes, lambda0,
                                          covariance, backbone)
    return decision


@dataclasses.dataclass
class Head:
    """One classifier head of a config and its decision.

    Args:
        path (tuple): where it is, from ``cfg.model``.
        type (str): its stock type, as written.
        twin (str): its ISDA type.
        decision (Decision): what becomes of it.
    """
    path: HeadPath
    type: str
    twin: str
    decision: Decision


@dataclasses.dataclass
class ConfigDecision:
    """The heads of one config and what becomes of them.

    Args:
        scope (str | None): the config's toolkit.
        heads (list[Head]): its classifier heads.
        already_isda (list[tuple]): paths of heads that already are ISDA.
        problem (str): why no head could be looked for. Defaults to ''.
    """
    scope: Optional[str]
    heads: List[Head]
    already_isda: List[HeadPath] = dataclasses.field(default_factory=list)
    problem: str = ''

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


def decide(cfg, fallback_scope: Optional[str] = None,
           lambda0: Optional[float] = None,
           covariance: Optional[str] = None) -> ConfigDecision:
    """Find the classifier heads of a parsed config and decide each.

    Args:
        cfg (mmengine.config.Config): the parsed config.
        fallback_scope (str, optional): its toolkit, if it names no
            ``default_scope``. Defaults to None.
        lambda0 (float, optional): ``--lambda0``. Defaults to None.
        covariance (str, optional): ``--covariance``. Defaults to None.

    Returns:
        ConfigDecision: the heads and their decisions.

    Raises:
        ImportError: the config's ``custom_imports`` cannot be imported.
    """
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
    backbone = model.get('backbone')
    with one_thread():
        for path in find_heads(model, scope):
            head = get_at(model, path)
            stock, twin = head_twin(head['type'], scope)
            heads.append(
                Head(path, stock, twin,
                     decide_head(head, twin, scope, lambda0, covariance,
                                 backbone)))
    return ConfigDecision(scope, heads, isda_heads(model, scope))

"""Finding the classifier heads of a config (step 1 of ``isda-config``).

A head is any dict of ``cfg.model`` whose ``type`` names a module of its
toolkit's ``MODELS`` registry for which ``'ISDA' + type`` is registered
too; support is read from the registries at run time, never from a list.
A head class used as a neck (a key ending in ``neck``, such as BLIP-2's
``vision_neck``, a ``LinearClsHead`` used as a projection) is no head: the
model only calls its ``forward``, never its ``loss``, so ISDA would do
nothing there.
"""
import dataclasses
import importlib
import importlib.util
from functools import lru_cache
from typing import Any, List, Optional, Tuple

from .meta import quiet

HeadPath = Tuple[Any, ...]  # keys and list indices from cfg.model


@dataclasses.dataclass
class Toolkit:
    """A toolkit's ``MODELS`` registry, by its scope.

    Args:
        scope (str): the toolkit's package (``mmdet``).
        registry (mmengine.Registry): its ``MODELS``.
    """
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


def config_scope(cfg, fallback: Optional[str]) -> Optional[str]:
    """The toolkit of a config: its ``default_scope``, else ``fallback``."""
    scope = cfg.get('default_scope')
    return scope if isinstance(scope, str) and scope else fallback


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
    type has an ISDA twin registered, not under a ``*neck`` key. Heads' own
    arguments are not searched."""
    found = []
    if isinstance(model, dict):
        if head_twin(model.get('type'), scope):
            return [at]
        for key, value in model.items():
            if isinstance(key, str) and key.endswith('neck'):
                continue  # called as a module: its loss never runs
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

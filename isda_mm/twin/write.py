"""Writing the twin (step 4 of ``isda-config``): its name, its source as a
thin child config, and the check that it loads back to the original with
only the ISDA fields changed.

The child has ``_base_`` (the original's path relative to the output file,
or the scope path as given), ``custom_imports`` with ``isda_mm`` added to
the original's imports, and only ``type``, ``lambda0`` and ``covariance``
of each enabled head, at their place in ``model``, written by mmengine's
own ``Config.pretty_text``. mmengine replaces lists wholesale, so a list
that holds an enabled head (cascade stages, lists of decode heads) is
written out whole.
"""
import copy
import os
import os.path as osp
import re
import tempfile
import textwrap
from typing import Any, Optional, Sequence

from .decide import ConfigDecision, Head, error_text
from .heads import get_at, path_text
from .parsing import plain

_GPUS_X_BATCH = re.compile(r'^\d+xb\d+')


def twin_name(stem: str) -> str:
    """The ISDA twin's file stem, OpenMMLab-style
    (``{algorithm}_{components}_{training setting}_{dataset}``).

    ``-isda`` goes right after the first GPUs x batch field (``8xb32``,
    ``4xb2-40k`` -> ``4xb2-isda-40k``); without one, ``isda-`` opens the
    field before the dataset, the schedule (``..._fpn_1x_coco`` ->
    ``..._fpn_isda-1x_coco``); a stem of fewer than three fields gets
    ``_isda``.

    Args:
        stem (str): the original's file name without ``.py``.

    Returns:
        str: the twin's stem.
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


def render_twin(base: str, custom_imports: dict, model_fields: dict,
                heads: Sequence[Head]) -> str:
    """The twin config's source: a comment saying what changed and why,
    ``_base_``, then ``custom_imports`` and ``model`` as mmengine's
    ``Config.pretty_text`` writes them.

    ``_base_`` is written here, on one line, for :func:`check_twin` to
    point it at the original's file.

    Args:
        base (str): the twin's ``_base_``.
        custom_imports (dict): from :func:`twin_imports`.
        model_fields (dict): from :func:`child_fields`.
        heads (Sequence[Head]): every head, for the comment.

    Returns:
        str: Python source.

    Raises:
        RuntimeError: mmengine cannot write a value (yapf rejects it).
    """
    from mmengine.config import Config
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
    try:
        body = Config(dict(custom_imports=custom_imports,
                           model=model_fields)).pretty_text
    except Exception as e:  # yapf's errors have no common base
        raise RuntimeError(
            f'mmengine cannot write the twin ({error_text(e)})') from e
    return f'{text}\n_base_ = [{base!r}]\n{body.rstrip()}\n'


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
    ``Config.fromfile`` and check that it merges to ``expected``.

    Args:
        text (str): the twin's source.
        base_path (str): the original, as a file or ``scope::path``.
        expected (dict): the original with the ISDA fields changed.

    Raises:
        RuntimeError: it does not load, or merges to something else.
    """
    from mmengine.config import Config
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'isda_twin.py')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(re.sub(r'^_base_ = .*$', f'_base_ = [{base_path!r}]',
                           text, count=1, flags=re.M))
        try:
            merged = Config.fromfile(path, import_custom_modules=False,
                                     lazy_import=False)
        except Exception as e:
            raise RuntimeError('the written twin does not load back '
                               f'({error_text(e)})') from e
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
    """The twin's source, checked by loading it back.

    Args:
        cfg (mmengine.config.Config): the original, parsed.
        decision (ConfigDecision): its heads, some enabled.
        base (str): the twin's ``_base_``, from :func:`base_reference`.
        base_path (str): the original, for the check.

    Returns:
        str: the twin's Python source.

    Raises:
        RuntimeError: the twin cannot be written, or does not load back
            to the original with only the ISDA fields changed.
    """
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

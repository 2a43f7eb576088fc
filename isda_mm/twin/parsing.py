"""Reading configs: resolve a path or ``scope::path``, parse it, and parse
many fast (:func:`fast_parsing`, for the zoo walk)."""
import contextlib
import copy
import os
import os.path as osp
import tempfile
from typing import Any, Optional, Tuple


def resolve_config(config: str) -> Tuple[str, Optional[str]]:
    """The file behind ``config`` and the scope its path names, if any.

    Args:
        config (str): a config file, or ``scope::path`` (``mmdet::...`` is
            looked up in the installed mmdet's zoo).

    Returns:
        tuple[str, str | None]: the file's absolute path and the scope.
    """
    from mmengine.config import Config
    if '::' in config:
        path, scope = Config._get_cfg_path(config, '')
        return path, scope
    if not osp.isfile(config):
        raise FileNotFoundError(f'no such config file: {config}')
    return osp.abspath(config), None


def load_config(path: str):
    """Parse a classic config (``_base_`` inheritance), importing nothing
    it names; the twin's ``_base_`` cannot inherit a lazy-import config.

    Args:
        path (str): the config file.

    Returns:
        mmengine.config.Config: the merged config.
    """
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


class _CachedBase(dict):
    """A parsed base handed back to mmengine's ``_file2dict`` (its keys, and
    the cache's values, which must not be changed), until
    ``_dict_to_config_dict`` swaps it for a copy of the converted tree."""

    def __init__(self, key: tuple, cfg_dict: dict):
        super().__init__(cfg_dict)
        self.key = key


_ATOMS = (str, int, float, bool, type(None))


def _copy_tree(value: Any, config_dict: type, memo: dict) -> Any:
    """A copy of a ``_dict_to_config_dict`` tree, the same as converting a
    fresh deep copy of its source again: every ``config_dict``, list and
    tuple there is new (no node is shared), with its attributes
    (``scope``); other leaves are deep-copied with one ``memo``, as
    ``deepcopy`` does."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is config_dict:
        new = config_dict.__new__(config_dict)
        vars(new).update(vars(value))
        dict.update(new, ((k, _copy_tree(v, config_dict, memo))
                          for k, v in dict.items(value)))
        return new
    if kind is list or kind is tuple:
        return kind(_copy_tree(v, config_dict, memo) for v in value)
    return copy.deepcopy(value, memo)


@contextlib.contextmanager
def fast_parsing():
    """Parse each base file once, and look up each scoped path once.

    mmengine parses a base again for every config that inherits it, and
    turns it into ConfigDicts again; a file parses the same whoever asks.
    Here a base is parsed once, converted once per scope it is inherited
    in, and each config that inherits it gets a copy of that. Scoped paths
    (``mmdet::...``, a YAML metafile search) are looked up once, and
    mmengine's temporary files stay in memory (/dev/shm) where they can.

    Note:
        This patches private methods of mmengine's ``Config`` (0.8 to
        0.10): ``_file2dict``, whose base results go straight to
        ``_dict_to_config_dict``, also patched, and ``_get_cfg_path``.
    """
    from unittest import mock

    from mmengine.config import Config, ConfigDict
    parse, locate = Config._file2dict, Config._get_cfg_path
    convert = Config._dict_to_config_dict
    parsed, converted, located, depth = {}, {}, {}, [0]

    def file2dict(filename, *args, **kwargs):
        key = (osp.abspath(filename), args, tuple(sorted(kwargs.items())))
        if key not in parsed:
            depth[0] += 1
            try:
                result = parse(filename, *args, **kwargs)
            finally:
                depth[0] -= 1
            if not depth[0]:  # a config itself, not a base
                return result
            parsed[key] = result
        cfg_dict, text, env = parsed[key]
        return _CachedBase(key, cfg_dict), text, dict(env)

    def dict_to_config_dict(cfg, scope=None, has_scope=True):
        if type(cfg) is not _CachedBase:
            return convert(cfg, scope, has_scope)
        key = (cfg.key, scope, has_scope)
        if key not in converted:
            converted[key] = convert(
                copy.deepcopy(parsed[cfg.key][0]), scope, has_scope)
        return _copy_tree(converted[key], ConfigDict, {})

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
                mock.patch.object(Config, '_dict_to_config_dict',
                                  staticmethod(dict_to_config_dict)), \
                mock.patch.object(Config, '_get_cfg_path',
                                  staticmethod(get_cfg_path)):
            yield
    finally:
        tempfile.tempdir = saved_tempdir

"""The configs under configs/ compose like the zoos' and do not repeat
themselves.

Structural checks on the config files as text (no toolkit is imported; the
toolkits' test_*configs.py tests parse every config and build its model):

* every config inherits a ``_base_`` or is short;
* every ``_base_`` entry is a relative path inside configs/ or a toolkit
  scope (``mmpretrain::``, ``mmseg::``, ``mmdet::``), and it exists;
* the shared parts in configs/_base_ hold no ``custom_imports`` and are all
  used;
* no two files under configs/ (the shared parts included) share a block of
  more than ``MAX_SHARED`` identical consecutive lines of code: a recipe
  written out twice belongs in configs/_base_.
"""
import ast
import importlib.util
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CONFIG_DIR = ROOT / 'configs'
BASE_DIR = CONFIG_DIR / '_base_'
FILES = sorted(CONFIG_DIR.rglob('*.py'))
PARTS = [p for p in FILES if BASE_DIR in p.parents]
CONFIGS = [p for p in FILES if BASE_DIR not in p.parents]
SCOPES = {'mmpretrain', 'mmseg', 'mmdet'}

MAX_LINES = 25  # a config that inherits nothing must be at most this long
MAX_SHARED = 8  # identical consecutive code lines two files may share
# Known repetitions, each with the reason it cannot be inherited, and the
# longest block the pair may share (so that it cannot grow unnoticed).
ALLOWED = {
    # The DeiT smoke recipe inherits the zoo's DeiT config, whose
    # dataloaders and pipelines a second _base_ may not redefine (mmengine
    # refuses a key that two bases both define), so it writes the CIFAR-10
    # JPEG pipelines out again.
    ('_base_/datasets/cifar10-jpg_bs128.py',
     'classification/deit_cifar/deit-tiny-p4_1xb32-300it_cifar10-jpg.py'):
    11,
}


def name(path):
    return str(path.relative_to(CONFIG_DIR))


def code_lines(path):
    """The lines of code, stripped: no blank lines, no comments."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith('#')]


def bases_of(path):
    """The config's ``_base_`` entries, as written ([] if none)."""
    for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == '_base_'):
            value = ast.literal_eval(node.value)
            return [value] if isinstance(value, str) else list(value)
    return []


def zoo_dir(scope):
    spec = importlib.util.find_spec(scope)
    if spec is None:
        return None
    return Path(spec.submodule_search_locations[0]) / '.mim' / 'configs'


def resolve(path, base):
    """The file a ``_base_`` entry names: (scope or None, path or None)."""
    if '::' in base:
        scope, relative = base.split('::', 1)
        zoo = zoo_dir(scope) if scope in SCOPES else None
        return scope, (zoo / relative if zoo else None)
    return None, (path.parent / base).resolve()


def test_configs_found():
    assert len(CONFIGS) >= 80
    assert len(PARTS) >= 8


@pytest.mark.parametrize('path', CONFIGS, ids=name)
def test_config_inherits_or_is_short(path):
    assert bases_of(path) or len(code_lines(path)) <= MAX_LINES, (
        f'{name(path)}: {len(code_lines(path))} lines of code and no '
        '_base_; compose it from configs/_base_ or the zoo')


@pytest.mark.parametrize('path', FILES, ids=name)
def test_bases_are_relative_or_scoped_and_exist(path):
    for base in bases_of(path):
        scope, target = resolve(path, base)
        if scope is not None:
            assert scope in SCOPES, f'{name(path)}: unknown scope in {base}'
            if target is None:
                continue  # that toolkit is not installed here
        else:
            assert base.startswith(('./', '../')), (
                f'{name(path)}: _base_ {base!r} is neither relative nor '
                'scoped')
            assert CONFIG_DIR.resolve() in target.parents, (
                f'{name(path)}: _base_ {base!r} leaves configs/')
        assert target.is_file(), f'{name(path)}: no such _base_ {base!r}'


@pytest.mark.parametrize('path', PARTS, ids=name)
def test_parts_hold_no_custom_imports(path):
    # the configs that use a part import isda_mm themselves
    assert not any(line.startswith('custom_imports')
                   for line in code_lines(path)), name(path)


def test_every_part_is_used():
    used = set()
    for path in FILES:
        for base in bases_of(path):
            scope, target = resolve(path, base)
            if scope is None:
                used.add(target)
    unused = [name(p) for p in PARTS if p.resolve() not in used]
    assert not unused, f'parts no config inherits: {unused}'


def label(path):
    return name(path) if CONFIG_DIR in path.parents else str(path)


def shared_blocks(length, files=FILES):
    """{(file, file): block} for every pair of files that share a block of
    ``length`` identical consecutive code lines (one such block each)."""
    owners = defaultdict(set)
    for path in files:
        lines = code_lines(path)
        for i in range(len(lines) - length + 1):
            owners[tuple(lines[i:i + length])].add(label(path))
    pairs = {}
    for block, owners_of_block in owners.items():
        names = sorted(owners_of_block)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                pairs.setdefault((a, b), block)
    return pairs


def test_no_block_repeated_across_configs():
    pairs = shared_blocks(MAX_SHARED + 1)
    repeated = {pair: block for pair, block in pairs.items()
                if pair not in ALLOWED}
    assert not repeated, '\n\n'.join(
        f'{a} and {b} share:\n  ' + '\n  '.join(block)
        for (a, b), block in sorted(repeated.items()))


@pytest.mark.parametrize('pair', sorted(ALLOWED))
def test_allowed_repetitions_do_not_grow(pair):
    assert all((CONFIG_DIR / f).is_file() for f in pair), pair
    assert pair in shared_blocks(MAX_SHARED + 1), (
        f'{pair} no longer repeat a block: drop it from ALLOWED')
    assert pair not in shared_blocks(ALLOWED[pair] + 1), (
        f'{pair} now share more than {ALLOWED[pair]} lines')


def test_the_check_finds_a_repeated_recipe(tmp_path):
    """A recipe written out again, comments and spacing changed, is
    caught; its first lines alone are not."""
    recipe = (CONFIG_DIR / 'segmentation' / 'fast_scnn' /
              'fast_scnn_1xb8-3k_camvid-160x160.py')
    lines = code_lines(recipe)
    copy = tmp_path / 'copy.py'
    copy.write_text('# a new comment\n\n' +
                    '\n'.join('    ' + line for line in lines[5:20]))
    assert tuple(sorted([name(recipe), str(copy)])) in shared_blocks(
        MAX_SHARED + 1, [recipe, copy])
    copy.write_text('\n'.join(lines[5:5 + MAX_SHARED]))
    assert not shared_blocks(MAX_SHARED + 1, [recipe, copy])

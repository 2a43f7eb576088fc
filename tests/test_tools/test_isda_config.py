"""``isda-config`` (:mod:`isda_mm.twin`, ``tools/isda_config.py``).

Unit tests write the ISDA twins of zoo configs of each toolkit, load them
back with ``Config.fromfile`` (the merged config must be the original with
only ``type``, ``lambda0`` and ``covariance`` of the heads changed) and
build the twins' models with their weights on the meta device. The zoo walk
parses and decides every config of the three installed zoos (no model
built, nothing written), from the parse it shares with
``tests/test_classification/test_zoo.py`` (``tests/zoo_cache.py``);
``pytest -s`` prints its coverage table, the one
``python tools/isda_config.py --zoo mmpretrain mmseg mmdet`` prints.
"""
import ast
import re
import runpy
import time
from pathlib import Path
from unittest import mock

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from zoo_cache import parsed_zoo

from isda_mm.twin import cli, decide, meta, parsing, write
from isda_mm.twin import heads as twin_heads
from isda_mm.twin import settings as twin_settings
from isda_mm.twin import zoo as twin_zoo

REPO = Path(__file__).parents[2]
ZOOS = ('mmpretrain', 'mmseg', 'mmdet')


def resolve(config):
    return parsing.resolve_config(config)[0]


def load(path):
    return Config.fromfile(str(path), lazy_import=False)


def run(capsys, *argv):
    """``isda-config ARGV``: (exit status, stdout)."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().out


def expected_model(config, heads):
    """The original model with each head at ``path`` changed to its twin
    with ``settings``."""
    model = parsing.plain(load(resolve(config)).model)
    for path, settings in heads.items():
        head = twin_heads.get_at(model, path)
        head.update(type='ISDA' + head['type'], **settings)
    return model


def source(path):
    """The variables a written twin's source defines."""
    namespace = {}
    exec(compile(Path(path).read_text(), str(path), 'exec'), namespace)
    return namespace


def module_at(model, path):
    for key in path:
        model = model[key] if isinstance(key, int) else getattr(model, key)
    return model


def build_model(cfg):
    scope = cfg.default_scope
    with DefaultScope.overwrite_default_scope(scope), meta.quiet(), \
            meta.meta_weights(), meta.one_thread():
        return twin_heads.toolkit(scope).registry.build(cfg.model)


IMAGENET = dict(lambda0=7.5, covariance='diagonal')
MMSEG = dict(lambda0=7.5, covariance='diagonal')
MMDET = dict(lambda0=0.5, covariance='diagonal')
CASES = {
    'mmpretrain::resnet/resnet50_8xb32_in1k.py': {('head', ): IMAGENET},
    'mmpretrain::deit/deit-tiny_4xb256_in1k.py': {('head', ): IMAGENET},
    'mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py': {
        ('decode_head', ): MMSEG,
        ('auxiliary_head', ): MMSEG
    },
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py': {
        ('roi_head', 'bbox_head'): MMDET
    },
    'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py': {
        ('roi_head', 'bbox_head', i): MMDET
        for i in range(3)
    },
}


@pytest.mark.parametrize('config', list(CASES))
def test_twin_of_zoo_config(config, tmp_path, capsys):
    out = tmp_path / 'twin.py'
    status, report = run(capsys, config, '--out', out)
    assert status == 0, report
    heads = CASES[config]
    for path in heads:
        assert twin_heads.path_text(path) in report
    ast.parse(out.read_text())
    assert source(out)['_base_'] == [config]

    merged = load(out)
    assert write.without_scope_keys(parsing.plain(merged.model)) == \
        expected_model(config, heads)
    assert merged.custom_imports == dict(imports=['isda_mm'],
                                         allow_failed_imports=False)
    # Nothing else of the original changes.
    original = parsing.plain(load(resolve(config)).to_dict())
    rest = {k: v for k, v in parsing.plain(merged.to_dict()).items()
            if k not in ('model', 'custom_imports')}
    assert write.without_scope_keys(rest) == {
        k: v for k, v in original.items() if k != 'model'}

    model = build_model(merged)
    for path, settings in heads.items():
        head = module_at(model, path)
        stock = twin_heads.get_at(parsing.plain(load(resolve(config)).model),
                            path)['type']
        assert type(head).__name__ == 'ISDA' + stock
        assert head.lambda0 == settings['lambda0']
        assert head.isda.estimator.covariance_kind == settings['covariance']


# The paper's table (T-PAMI 2021; diagonal on ImageNet, full on CIFAR).
PAPER = {
    'mmpretrain::resnet/resnet101_8xb32_in1k.py': (5.0, 'diagonal'),
    'mmpretrain::resnet/resnetv1d101_8xb32_in1k.py': (5.0, 'diagonal'),
    'mmpretrain::densenet/densenet121_4xb256_in1k.py': (1.0, 'diagonal'),
    'mmpretrain::densenet/densenet201_4xb256_in1k.py': (1.0, 'diagonal'),
    'mmpretrain::resnet/resnet50_8xb32_in1k.py': (7.5, 'diagonal'),
    'mmpretrain::resnet/resnet152_8xb32_in1k.py': (7.5, 'diagonal'),
    'mmpretrain::resnext/resnext101-32x8d_8xb32_in1k.py': (7.5, 'diagonal'),
    # Not in the paper: the default.
    'mmpretrain::resnet/resnet18_8xb32_in1k.py': (7.5, 'diagonal'),
    'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py': (7.5,
                                                              'diagonal'),
    # CIFAR: whatever the backbone.
    'mmpretrain::resnet/resnet101_8xb16_cifar10.py': (0.5, 'full'),
}


@pytest.mark.parametrize('config', list(PAPER))
def test_paper_lambda0_by_backbone(config, tmp_path, capsys):
    """ImageNet-scale heads take the paper's lambda0 of their backbone
    family (ResNet-101 5, DenseNet 1, else 7.5); CIFAR ones 0.5, full."""
    lambda0, covariance = PAPER[config]
    out = tmp_path / 'twin.py'
    status, report = run(capsys, config, '--out', out)
    assert status == 0, report
    assert f'(lambda0={lambda0!r}, covariance={covariance!r})' in report
    head = load(out).model.head
    assert (head.lambda0, head.covariance) == (lambda0, covariance)
    # --lambda0 still wins.
    status, report = run(capsys, config, '--out', out, '--force',
                         '--lambda0', '3')
    assert status == 0, report
    assert load(out).model.head.lambda0 == 3.0


def test_imagenet_lambda0_rule():
    rule = twin_settings.imagenet_lambda0
    assert rule(dict(type='ResNet', depth=101)) == 5.0
    assert rule(dict(type='mmpretrain.ResNetV1c', depth=101)) == 5.0
    assert rule(dict(type='ResNet', depth=152)) == 7.5
    assert rule(dict(type='ResNet', depth=34)) == 7.5
    assert rule(dict(type='ResNeXt', depth=101)) == 7.5
    assert rule(dict(type='DenseNet', arch='161')) == 1.0
    assert rule(dict(type='DenseNet', arch=dict(growth_rate=8))) == 1.0
    # By name: a subclass of ResNet is another network.
    assert rule(dict(type='SEResNet', depth=101)) == 7.5
    assert rule(dict(type='ResNeSt', depth=101)) == 7.5
    assert rule(None) == rule(dict(type=object)) == 7.5
    sizes = [(1000, 2048)]
    resnet101 = dict(type='ResNet', depth=101)
    assert twin_settings.isda_settings('mmpretrain', sizes,
                                  backbone=resnet101) == dict(
                                      lambda0=5.0, covariance='diagonal')
    assert twin_settings.isda_settings('mmpretrain', [(10, 2048)],
                                  backbone=resnet101) == dict(
                                      lambda0=0.5, covariance='full')
    assert twin_settings.isda_settings('mmpretrain', sizes, lambda0=2.0,
                                  backbone=resnet101) == dict(
                                      lambda0=2.0, covariance='diagonal')
    # Above 1 GiB of full covariances (ImageNet-21k-like widths): diagonal.
    assert twin_settings.isda_settings('mmpretrain', [(999, 1024)]) == dict(
        lambda0=0.5, covariance='diagonal')
    assert twin_settings.isda_settings('mmseg', [(19, 512)],
                                  backbone=resnet101) == dict(
                                      lambda0=7.5, covariance='diagonal')


def test_repository_isda_configs_reproduced():
    """The twin of every baseline in ``configs/classification`` gets the
    ``lambda0`` and covariance its hand-written ``-isda`` config states
    (the paper's ImageNet, CIFAR and semi-supervised settings)."""
    pairs = sorted(REPO.glob('configs/classification/*/*-isda*.py'))
    assert len(pairs) >= 20
    for isda in pairs:
        base = isda.with_name(isda.name.replace('-isda', ''))
        with parsing.fast_parsing(), meta.quiet():
            decision = decide.decide(parsing.load_config(str(base)),
                                     'mmpretrain')
            model = parsing.plain(parsing.load_config(str(isda)).model)
        got = {h.path: h.decision.settings for h in decision.enabled}
        want = {}
        for path in twin_heads.isda_heads(model, 'mmpretrain'):
            head = twin_heads.get_at(model, path)
            want[path] = dict(lambda0=head['lambda0'],
                              covariance=head['covariance'])
        assert got == want and want, isda.name


def test_list_of_heads_written_whole(tmp_path, capsys):
    """mmengine replaces lists wholesale: every cascade stage is written
    out with all of its fields."""
    config = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
    out = tmp_path / 'twin.py'
    assert run(capsys, config, '--out', out, '--dry-run')[0] == 0
    assert not out.exists()
    assert run(capsys, config, '--out', out)[0] == 0
    namespace = source(out)
    stages = namespace['model']['roi_head']['bbox_head']
    original = load(resolve(config)).model.roi_head.bbox_head
    assert len(stages) == 3
    for stage, stock in zip(stages, original):
        assert stage == dict(parsing.plain(stock),
                             type='ISDA' + stock.type, **MMDET)
    assert set(namespace['model']) == {'roi_head'}


def test_overrides(tmp_path, capsys):
    config = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'
    out = tmp_path / 'twin.py'
    status, report = run(capsys, config, '--out', out, '--lambda0', '2',
                         '--covariance', 'full')
    assert status == 0
    assert "lambda0=2.0, covariance='full'" in report
    model = build_model(load(out))
    assert model.head.lambda0 == 2.0
    assert model.head.isda.estimator.covariance_kind == 'full'
    # One override: the rule chooses the other setting.
    status, _ = run(capsys, config, '--out', out, '--force',
                    '--covariance', 'full')
    assert status == 0
    assert load(out).model.head.lambda0 == 7.5


def test_one_stage_detector_refused(tmp_path, capsys):
    out = tmp_path / 'twin.py'
    status, report = run(capsys,
                         'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                         '--out', out)
    assert status == 1
    assert 'model.bbox_head (RetinaHead): refused: ' in report
    reason = report.split('refused: ', 1)[1].splitlines()[0]
    assert 'ISDA' in reason and len(reason) > 20  # why, and what instead
    assert 'all were refused' in report
    assert not out.exists()


def test_no_classifier_head(tmp_path, capsys):
    out = tmp_path / 'twin.py'
    status, report = run(
        capsys, 'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-300e_'
        'in1k.py', '--out', out)
    assert status == 1
    assert 'no classifier head found' in report
    assert not out.exists()
    # A config whose heads already are ISDA twins says so.
    status, report = run(
        capsys, REPO / 'configs/classification/imagenet/'
        'resnet50_8xb64-isda-coslr-300e_in1k.py', '--out', out)
    assert status == 1
    assert 'already ISDA: model.head' in report


def test_local_config_relative_base(tmp_path, capsys):
    """A config file: the twin goes next to it by the naming rule, with
    ``_base_`` relative to the twin; a small dataset gets the CIFAR
    setting; the config's own custom_imports are kept."""
    folder = tmp_path / 'mine'
    folder.mkdir()
    config = folder / 'resnet18_8xb16_cifar10.py'
    config.write_text(
        "_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'\n"
        "custom_imports = dict(imports=['mmpretrain.models'])\n")
    status, report = run(capsys, config)
    assert status == 0, report
    out = folder / 'resnet18_8xb16-isda_cifar10.py'
    assert source(out)['_base_'] == ['./resnet18_8xb16_cifar10.py']
    merged = load(out)
    assert merged.model.head.type == 'ISDALinearClsHead'
    assert (merged.model.head.lambda0,
            merged.model.head.covariance) == (0.5, 'full')
    assert merged.custom_imports == dict(
        imports=['mmpretrain.models', 'isda_mm'], allow_failed_imports=False)
    # The output exists: a usage error without --force.
    assert usage_error(capsys, config) == (
        f'{out} exists; pass --force to overwrite it, or --out')
    assert run(capsys, config, '--force')[0] == 0
    # Elsewhere: the base path is relative to the twin.
    other = tmp_path / 'other' / 'twin.py'
    assert run(capsys, config, '--out', other)[0] == 0
    assert source(other)['_base_'] == ['../mine/resnet18_8xb16_cifar10.py']
    assert load(other).model.head.type == 'ISDALinearClsHead'


def usage_error(capsys, *argv):
    """The message of the usage error ``isda-config ARGV`` exits with."""
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2
    assert out == ''
    assert err.startswith('usage: isda-config ')
    last = err.rstrip().splitlines()[-1]
    assert last.startswith('isda-config: error: ')
    return last[len('isda-config: error: '):]


@pytest.mark.parametrize('argv, message', [
    ([], r'^CONFIG is required \(or --zoo PACKAGE \.\.\.\)$'),
    (['a.py', '--covariance', 'low'],
     r"^argument --covariance: invalid choice: 'low' \(choose from "
     r"'full', 'diagonal'\)$"),
    (['a.py', '--lambda0', '-1'], r'^argument --lambda0: must be >= 0, got '
     r'-1$'),
    (['a.py', '--lambda0', 'nan'], r'^argument --lambda0: must be >= 0, got '
     r'nan$'),
    (['no/such/config.py'], r'^cannot read no/such/config\.py: '
     r'FileNotFoundError: no such config file: no/such/config\.py$'),
    (['mmdet::no_such/config.py'], r'^cannot read mmdet::no_such/config\.py'
     r': FileNotFoundError: file ".*/mmdet/\.mim/configs/no_such/config\.py"'
     r' does not exist$'),
    (['a.py', '--zoo', 'mmdet'], r'^--zoo takes no CONFIG or --out$'),
    (['--zoo', 'mmdet', '--out', 'x.py'], r'^--zoo takes no CONFIG or --out$'),
    (['--zoo', 'no_such_toolkit'], r'^no_such_toolkit is not installed$'),
])
def test_usage_errors(argv, message, capsys):
    assert re.search(message, usage_error(capsys, *argv))


def test_usage_errors_of_a_config(tmp_path, capsys):
    """An output that exists, and custom_imports that do not import."""
    config = tmp_path / 'resnet18_8xb16_cifar10.py'
    config.write_text(
        "_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'\n"
        "custom_imports = dict(imports=['no_such_module_of_isda'])\n")
    out = tmp_path / 'twin.py'
    out.write_text('# mine\n')
    assert usage_error(capsys, config, '--out', out) == (
        f'{out} exists; pass --force to overwrite it, or --out')
    assert out.read_text() == '# mine\n'
    assert re.fullmatch(
        f'cannot import the custom_imports of {re.escape(str(config))}: '
        r'ImportError: Failed to import no_such_module_of_isda',
        usage_error(capsys, config, '--out', out, '--force'))


def test_twin_name():
    """The repository's own ISDA configs are named by this rule."""
    names = {
        'resnet50_8xb64-coslr-300e_in1k':
        'resnet50_8xb64-isda-coslr-300e_in1k',
        'resnet50_8xb32_in1k': 'resnet50_8xb32-isda_in1k',
        'deeplabv3_r101-d8_4xb2-40k_cityscapes-769x769':
        'deeplabv3_r101-d8_4xb2-isda-40k_cityscapes-769x769',
        'faster-rcnn_r50_fpn_1x_coco': 'faster-rcnn_r50_fpn_isda-1x_coco',
        'mask-rcnn_r18_fpn_1xb2-8e_coco-mini-512x320':
        'mask-rcnn_r18_fpn_1xb2-isda-8e_coco-mini-512x320',
        'fast_scnn_1xb8-3k_camvid-160x160':
        'fast_scnn_1xb8-isda-3k_camvid-160x160',
        'resnet50_8xb256-rsb-a3-softmax-100e_in1k':
        'resnet50_8xb256-isda-rsb-a3-softmax-100e_in1k',
        'my_config': 'my_config_isda',
        'model': 'model_isda',
    }
    assert {k: write.twin_name(k) for k in names} == names
    assert write.default_output('mmdet::a/b_c_1x_coco.py', '/x') == \
        '/x/b_c_isda-1x_coco.py'


def test_render_and_check(tmp_path):
    """mmengine's ``pretty_text`` writes the twin's fields; what it cannot
    write (no literal for inf) is caught by loading the twin back."""
    base = tmp_path / 'base.py'
    base.write_text("model = dict(head=dict(type='X', a=1), b=[1, 2])\n")
    imports = write.twin_imports(None)
    fields = dict(head=dict(type='ISDAX', lambda0=0.5),
                  b=[dict(c=(1, ), d={'k-1': None, 2: 'x'}), -0.5, 'y' * 90])
    text = write.render_twin('./base.py', imports, fields, [])
    out = tmp_path / 'twin.py'
    out.write_text(text)
    assert source(out)['_base_'] == ['./base.py']
    expected = dict(model=dict(head=dict(type='ISDAX', a=1, lambda0=0.5),
                               b=fields['b']),
                    custom_imports=imports)
    write.check_twin(text, str(base), expected)
    assert load(out).model.to_dict() == expected['model']
    with pytest.raises(RuntimeError, match='does not merge'):
        write.check_twin(text, str(base), dict(expected, model={}))
    fields['head']['lambda0'] = float('inf')
    text = write.render_twin('./base.py', imports, fields, [])
    with pytest.raises(RuntimeError, match='does not load back'):
        write.check_twin(text, str(base), expected)


def test_fast_parsing_parses_as_mmengine(tmp_path):
    """Bases parsed once and converted once per scope give each config
    what mmengine alone gives: values, ``_scope_`` keys and text."""
    child = tmp_path / 'child.py'
    child.write_text(
        "_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'\n"
        'model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))\n')
    paths = [resolve(config) for config in CASES] + [str(child)]
    plain_parse = [load(path) for path in paths]
    with parsing.fast_parsing():
        for _ in range(2):  # the second time from the cache
            for path, want in zip(paths, plain_parse):
                got = parsing.load_config(path)
                assert got.to_dict() == want.to_dict(), path
                assert got.text == want.text


def test_helpers():
    assert write.child_fields(
        dict(a=dict(b=1, c=[1, 2]), d=3),
        dict(a=dict(b=1, c=[1, 5]), d=3)) == dict(a=dict(c=[1, 5]))
    assert decide.first_sentence(
        'ISDAFooHead: FooHead is X, e.g. Y. More. And more') == \
        'FooHead is X, e.g. Y'
    assert decide.first_sentence('No stop; use Z') == 'No stop; use Z'


def test_wrapper_and_entry_point(capsys):
    with mock.patch('sys.argv', ['isda_config.py', '--help']), \
            pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / 'tools' / 'isda_config.py'),
                       run_name='__main__')
    assert exit_.value.code == 0
    assert '--covariance' in capsys.readouterr().out
    assert 'isda-config = isda_mm.twin:main' in (REPO / 'setup.py').read_text()


# ---------------------------------------------------------------- zoo walk


@pytest.fixture(scope='module')
def zoo():
    start = time.perf_counter()
    walks = {package: twin_zoo.walk_zoo(package, parsed_zoo(package))
             for package in ZOOS}
    seconds = time.perf_counter() - start
    print('\n' + twin_zoo.coverage_table(list(walks.values())))
    print('\nzoo walk: ' + ', '.join(
        f'{w.package} {w.configs} configs {w.seconds:.1f} s '
        f'({w.cpu_seconds:.1f} s CPU)' for w in walks.values()) +
        f'; {seconds:.1f} s in all')
    return walks


def zoo_files(package):
    """The zoo's configs, found here (not by the tool's ``os.walk``)."""
    root = Path(twin_zoo.zoo_dir(package))
    return sorted(str(p.relative_to(root)) for p in root.rglob('*.py')
                  if '_base_' not in p.relative_to(root).parts)


def has_head(model, scope):
    """Whether a parsed model holds a dict, under a key that names a head
    (``head``, ``decode_head``, ``bbox_head``, ...), whose type has an
    ``ISDA`` twin registered: the classifier heads, found by key rather
    than by the tool's search of every dict but necks."""
    if isinstance(model, (list, tuple)):
        return any(has_head(v, scope) for v in model)
    if not isinstance(model, dict):
        return False
    for key, value in model.items():
        heads = value if isinstance(value, (list, tuple)) else [value]
        for head in heads:
            kind = head.get('type') if isinstance(head, dict) else None
            if str(key).endswith('head') and isinstance(kind, str):
                prefix, dot, name = kind.rpartition('.')
                kit = twin_heads.toolkit(prefix if dot else scope)
                if kit is not None and kit.has('ISDA' + name):
                    return True
        if has_head(value, scope):
            return True
    return False


def test_zoo_walk_accounts_for_every_config(zoo):
    """Each file of the zoo is decided or unparsed, exactly once; only
    configs that do not parse, or whose custom_imports do not import, are
    unparsed."""
    floors = dict(mmpretrain=500, mmseg=600, mmdet=800)
    for package, walk in zoo.items():
        files = zoo_files(package)
        assert len(files) >= floors[package]
        assert walk.configs == len(files)
        outcomes = [*walk.verdicts, *walk.unparsed, *walk.crashed]
        assert sorted(outcomes) == files, package
        # The tool itself never fails on a config.
        assert walk.crashed == {}
        root = Path(twin_zoo.zoo_dir(package))
        parsed = {str(Path(path).relative_to(root)): cfg
                  for path, cfg in parsed_zoo(package).items()}
        failed = {name for name, cfg in parsed.items()
                  if isinstance(cfg, Exception)}
        assert failed <= set(walk.unparsed), package
        for name in set(walk.unparsed) - failed:
            assert parsed[name].get('custom_imports'), name
        assert len(walk.unparsed) <= 10
        assert all(walk.unparsed.values())


def test_zoo_walk_finds_every_head(zoo):
    """A config has a classifier head (any verdict but ``no head``)
    exactly when its parsed model holds one under a ``*head`` key."""
    for package, walk in zoo.items():
        root = Path(twin_zoo.zoo_dir(package))
        with_head = set()
        for path, cfg in parsed_zoo(package).items():
            name = str(Path(path).relative_to(root))
            if name in walk.verdicts and not isinstance(
                    cfg, Exception) and has_head(
                    parsing.plain(cfg.get('model')),
                    twin_heads.config_scope(cfg, package)):
                with_head.add(name)
        found = {name for name, verdict in walk.verdicts.items()
                 if verdict != 'no head'}
        assert sorted(found) == sorted(with_head), package
        assert walk.with_head == len(with_head)


# A config of each verdict, with the start of its first head's reason.
KNOWN_VERDICTS = {
    'mmpretrain': {
        'resnet/resnet50_8xb32_in1k.py': ('enabled', ''),
        'vgg/vgg16_8xb32_in1k.py': ('refused', 'ClsHead '),
        'arcface/resnet50-arcface_8xb32_inshop.py':
        ('refused', 'ArcFaceClsHead scores the cosine'),
        'levit/deploy/levit-128s_8xb256_in1k.py':
        ('undecided', 'the stock head does not build from its config '
         'alone either'),
        'mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py': ('no head', ''),
        # LinearClsHead as a neck: never scored, so no ISDA.
        'blip2/blip2_8xb32_retrieval.py': ('no head', ''),
        'blip2/blip2-opt2.7b_8xb16_gqa.py': ('no head', ''),
    },
    'mmseg': {
        'deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py':
        ('enabled', ''),
        'mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py':
        ('refused', 'Mask2FormerHead classifies mask proposals'),
    },
    'mmdet': {
        'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py': ('enabled', ''),
        'retinanet/retinanet_r50_fpn_1x_coco.py':
        ('refused', 'RetinaHead is a dense (one-stage or RPN) head'),
        'common/ms-90k_coco.py': ('no head', ''),
    },
}


def test_zoo_walk_verdicts_of_known_configs(zoo):
    floors = dict(mmpretrain=350, mmseg=600, mmdet=350)
    for package, walk in zoo.items():
        assert walk.count('enabled') >= floors[package], package
        for name, (verdict, reason) in KNOWN_VERDICTS[package].items():
            assert walk.verdicts[name] == verdict, name
            if verdict in ('refused', 'undecided'):
                assert walk.reasons[name][0].startswith(reason), name
            else:
                assert name not in walk.reasons
        for name, verdict in walk.verdicts.items():
            if verdict in ('refused', 'undecided'):
                assert all(r.strip() for r in walk.reasons[name]), name
                assert walk.reasons[name], name
    # The coverage table counts the refused configs by reason: every
    # ClsHead config (the backbone classifies) under one reason.
    walk = zoo['mmpretrain']
    clshead = {name for name, reasons in walk.reasons.items()
               if reasons[0].startswith('ClsHead ')}
    assert len(clshead) >= 5
    assert [(n, r) for r, n in walk.refused.items()
            if r.startswith('ClsHead ')] == [
                (len(clshead), walk.reasons['vgg/vgg16_8xb32_in1k.py'][0])]


def test_zoo_walk_matches_the_command(zoo, tmp_path, capsys):
    """The walk's decision is the command's: a config it enables gets a
    twin that loads, one it refuses exits with 1."""
    walk = zoo['mmdet']
    root = Path(twin_zoo.zoo_dir('mmdet'))
    enabled = next(n for n, v in sorted(walk.verdicts.items())
                   if v == 'enabled' and n.startswith('mask_rcnn/'))
    refused = next(n for n, v in sorted(walk.verdicts.items())
                   if v == 'refused')
    out = tmp_path / 'twin.py'
    assert run(capsys, root / enabled, '--out', out)[0] == 0
    load(out)
    assert run(capsys, root / refused, '--out', tmp_path / 'no.py')[0] == 1
    assert decide.decide(load(root / enabled), 'mmdet').verdict == 'enabled'

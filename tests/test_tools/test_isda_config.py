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
    assert run(capsys, config)[0] == 2
    assert run(capsys, config, '--force')[0] == 0
    # Elsewhere: the base path is relative to the twin.
    other = tmp_path / 'other' / 'twin.py'
    assert run(capsys, config, '--out', other)[0] == 0
    assert source(other)['_base_'] == ['../mine/resnet18_8xb16_cifar10.py']
    assert load(other).model.head.type == 'ISDALinearClsHead'


@pytest.mark.parametrize('argv', [
    [], ['a.py', '--covariance', 'low'], ['a.py', '--lambda0', '-1'],
    ['no/such/config.py'], ['mmdet::no_such/config.py'],
    ['a.py', '--zoo', 'mmdet']
])
def test_usage_errors(argv, capsys):
    assert run(capsys, *argv)[0] == 2


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


def test_zoo_walk_accounts_for_every_config(zoo):
    floors = dict(mmpretrain=500, mmseg=600, mmdet=800)
    for package, walk in zoo.items():
        assert walk.configs >= floors[package]
        assert walk.configs == (len(walk.verdicts) + len(walk.unparsed) +
                                len(walk.crashed))
        # The tool itself never fails on a config.
        assert walk.crashed == {}
        assert len(walk.unparsed) <= 10
        assert all(walk.unparsed.values())


def test_zoo_walk_enables_isda(zoo):
    floors = dict(mmpretrain=350, mmseg=600, mmdet=350)
    for package, walk in zoo.items():
        assert walk.count('enabled') >= floors[package], package
        assert walk.with_head >= walk.count('enabled')
    assert zoo['mmpretrain'].verdicts['resnet/resnet50_8xb32_in1k.py'] == \
        'enabled'
    assert zoo['mmseg'].verdicts[
        'deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py'] == \
        'enabled'
    det = zoo['mmdet'].verdicts
    assert det['cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'] == 'enabled'
    assert det['retinanet/retinanet_r50_fpn_1x_coco.py'] == 'refused'


def test_zoo_walk_refusals_have_reasons(zoo):
    for walk in zoo.values():
        refused = [name for name, v in walk.verdicts.items()
                   if v in ('refused', 'undecided')]
        assert sorted(refused) == sorted(walk.reasons)
        for name in refused:
            assert walk.reasons[name], name
            assert all(r.strip() for r in walk.reasons[name]), name


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

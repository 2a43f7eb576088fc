"""The benchmark compares like with like: its dense algorithm (the released
implementation's, rewritten) agrees with the core, its head rows check the
twin against the stock head and the core before timing, and its model rows
build from this repository's configs."""
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

PACKAGE = Path(__file__).parents[2] / 'tools' / 'benchmark'


def _load(name):
    if 'benchmark' not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            'benchmark', PACKAGE / '__init__.py',
            submodule_search_locations=[str(PACKAGE)])
        sys.modules['benchmark'] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules['benchmark'])
    return importlib.import_module(f'benchmark.{name}')


core, heads, model, cli, measure, soft = (
    _load(n) for n in ('core', 'heads', 'model', 'cli', 'measure', 'soft'))


@pytest.mark.parametrize('shape', ['24x6x8:full', '40x7x5:diagonal'])
def test_dense_agrees_with_core(shape):
    errors = core.check_agreement(
        core.parse_shape(shape), 'cpu', ratio=0.5, rtol=1e-5)
    assert set(errors) == {'loss', 'weight_grad', 'mean', 'covariance'}


def test_main_prints_core_table(tmp_path, capsys):
    out = tmp_path / 'table.md'
    cli.main(['core', '--shapes', '16x4x6:full', '--repeats', '1',
              '--output', str(out)])
    table = out.read_text()
    assert '| 16x4x6:full | full | 16 | 4 | 6 |' in table
    assert 'speed-up' in capsys.readouterr().out


SMALL_ROWS = [
    heads.HeadRow('cls', 'mmpretrain',
                  dict(type='LinearClsHead', num_classes=5, in_channels=8),
                  dict(samples=12), dict(lambda0=2.0, covariance='full')),
    heads.HeadRow('seg', 'mmseg',
                  dict(type='FCNHead', in_channels=8, channels=4,
                       num_convs=1, num_classes=4),
                  dict(images=2, crop=33, strides=(8, )),
                  dict(lambda0=7.5, covariance='diagonal')),
    heads.HeadRow('segformer', 'mmseg',
                  dict(type='SegformerHead', in_channels=[4, 6],
                       in_index=[0, 1], channels=8, num_classes=4),
                  dict(images=1, crop=32, strides=(4, 8), channels=(4, 6)),
                  dict(lambda0=7.5, covariance='diagonal')),
    heads.HeadRow('det', 'mmdet',
                  dict(heads.ROWS[-1].head, in_channels=4,
                       fc_out_channels=8, num_classes=3),
                  dict(rois=16, positive=0.5),
                  dict(lambda0=0.5, covariance='diagonal')),
]


@pytest.mark.parametrize('row', SMALL_ROWS, ids=lambda r: r.name)
def test_head_rows_check_then_time(row):
    steps, info = heads.build_steps(row)
    assert set(steps) == set(heads.STEPS)
    assert info['full'] == (row.isda['covariance'] == 'full')
    if info['full']:
        steps['gemm'] = measure.gemm_step('cpu', 32)
    result = measure.measure_alternating(steps, 'cpu', repeats=2)
    assert all(len(r['times']) == 2 for r in result.values())
    if info['full']:
        result['gemm'].update(classes=info['classes'], flops=1, size=32)
    table = heads.format_table([dict(result, row=row.name)])
    assert table.count(f'| {row.name} |') == 1
    assert ('GFLOP/s' in table) == info['full']


def test_head_rows_check_can_fail(monkeypatch):

    class Shifted(heads.ISDALoss):

        def augment(self, *args):
            return super().augment(*args) + 1e-3

    monkeypatch.setattr(heads, 'ISDALoss', Shifted)
    with pytest.raises(measure.BenchmarkError, match='augmented logits'):
        heads.build_steps(SMALL_ROWS[0])


@pytest.mark.parametrize('row', model.ROWS, ids=lambda r: r.name)
def test_model_rows_configs_parse(row):
    for config in (row.config, row.isda_config):
        cfg = Config.fromfile(str(Path(model.ROOT) / 'configs' / config))
        cfg.merge_from_dict(row.options)
        assert 'ISDA' in str(cfg.model) or config == row.config


def test_model_row_trains_both_models():
    fast_scnn = model.ROWS[-1]._replace(images=2, size=(64, 64))
    # The two models share all but their heads.
    stock, isda = model.build_models(fast_scnn)
    assert isda.backbone is stock.backbone
    assert isda.decode_head is not stock.decode_head
    steps = model.build_steps(fast_scnn)
    for step in steps.values():
        log_vars = step()
        assert torch.isfinite(log_vars['loss'])
    assert 'decode.isda_lambda' in log_vars
    result = measure.measure_alternating(steps, 'cpu', repeats=2)
    assert '| Fast-SCNN' in model.format_table([dict(result, row='Fast-SCNN')])


@pytest.mark.parametrize('shape', ['24x6x8:full', '40x7x5:diagonal'])
def test_soft_rows_check_then_time(shape):
    shape = core.parse_shape(shape)
    errors = soft.check_one_hot(shape, 'cpu', ratio=0.5, rtol=1e-5)
    assert set(errors) == {'loss', 'weight_grad'}
    steps = soft.build_steps(shape, core.make_inputs(shape, 'cpu'), 0.5)
    result = measure.measure_alternating(steps, 'cpu', repeats=2)
    assert f'| {shape.name} |' in soft.format_table([dict(result,
                                                          shape=shape)])


def test_soft_rows_check_can_fail(monkeypatch):

    class Shifted(soft.ISDALoss):

        def augment_soft(self, *args):
            out, extra = super().augment_soft(*args)
            return out, extra + 1e-3

    monkeypatch.setattr(soft, 'ISDALoss', Shifted)
    with pytest.raises(measure.BenchmarkError, match='one-hot targets'):
        soft.check_one_hot(core.parse_shape('24x6x8:full'), 'cpu', 0.5, 1e-5)


semi = _load('semi')
# ConvNet13 needs 12x12 images at least (two poolings, then a 3x3 valid
# convolution); 4 images, 2 labeled, run in tens of milliseconds.
TINY_BATCH = dict(images=4, labeled=2, size=12)


def test_semi_table_is_registered():
    assert cli.TABLES['semi'] is semi
    assert cli.parse_args(['semi']).tables == ['semi']


@pytest.mark.parametrize('index', range(len(semi.METHODS)),
                         ids=[m.name for m in semi.METHODS])
def test_semi_rows_check_then_time(index):
    method = semi.METHODS[index]
    stock, isda = semi.build_models(method, semi.Batch(**TINY_BATCH))
    assert type(stock.head).__name__ == 'LinearClsHead'
    assert type(isda.head).__name__ == 'ISDALinearClsHead'
    assert isda.head.lambda0 == semi.LAMBDA0
    assert isda.head.isda.estimator.covariance_kind == 'full'
    assert type(isda.backbone).__name__ == 'ConvNet13'
    # Same weights; the ISDA model adds its statistics only.
    isda_state = isda.state_dict()
    for key, value in stock.state_dict().items():
        assert torch.equal(isda_state.pop(key), value), key
    assert all('.isda.' in key for key in isda_state)
    result = semi.worker(dict(method=index, device='cpu', repeats=2,
                              batch=TINY_BATCH))
    assert result['check']['loss'] <= semi.RTOL
    assert all(len(result[k]['times']) == 2 for k in ('baseline', 'isda'))
    table = semi.format_table([dict(result, method=method.name)])
    assert table.count(f'| {method.name} |') == 1


@pytest.mark.parametrize('method', semi.METHODS, ids=lambda m: m.name)
def test_semi_check_can_fail(monkeypatch, method):
    config = semi.model_config
    # An ISDA model that ignores the lambda0 = 0 it is asked for: the check
    # sees ISDA in every method (warm statistics, known ensemble targets).
    monkeypatch.setattr(semi, 'model_config', lambda method, lambda0: config(
        method, None if lambda0 is None else 5.0))
    with pytest.raises(measure.BenchmarkError,
                       match=rf'{method.name} \(lambda0 = 0\)'):
        semi.check_lambda0_zero(method, semi.Batch(**TINY_BATCH))

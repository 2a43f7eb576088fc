"""The benchmark compares like with like: its dense algorithm (the released
implementation's, rewritten) agrees with the core on small shapes."""
import importlib.util
from pathlib import Path

import pytest

path = Path(__file__).parents[2] / 'tools' / 'benchmark.py'
spec = importlib.util.spec_from_file_location('isda_benchmark', path)
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


@pytest.mark.parametrize('shape', ['24x6x8:full', '40x7x5:diagonal'])
def test_dense_agrees_with_core(shape):
    errors = benchmark.check_agreement(
        benchmark.parse_shape(shape), 'cpu', ratio=0.5, rtol=1e-5)
    assert set(errors) == {'loss', 'weight_grad', 'mean', 'covariance'}


def test_main_prints_table(tmp_path, capsys):
    out = tmp_path / 'table.md'
    benchmark.main(['--shapes', '16x4x6:full', '--repeats', '1',
                    '--output', str(out)])
    table = out.read_text()
    assert '| 16x4x6:full | full | 16 | 4 | 6 |' in table
    assert 'speed-up' in capsys.readouterr().out


def test_head_row_dense_agrees_with_isda_head():
    row = dict(batch=2, height=4, width=6, stride=8, channels=8, classes=5)
    errors = benchmark.check_head_agreement('cpu', ratio=7.5, rtol=1e-5,
                                            row=row)
    assert set(errors) == {'loss', 'weight_grad'}
    stock = benchmark.build_head_step('stock', 'cpu', 7.5, row=row)[1]()
    isda = benchmark.build_head_step('isda_mm', 'cpu', 7.5, row=row)[1]()
    assert isda > stock  # the ISDA terms only raise the wrong-class logits

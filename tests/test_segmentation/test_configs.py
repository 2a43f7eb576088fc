"""Every config under configs/segmentation/ parses and builds its model,
and each ISDA config is its baseline with ISDA heads."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import isda_mm  # noqa: F401

CONFIG_DIR = Path(__file__).parents[2] / 'configs' / 'segmentation'
CONFIGS = sorted(CONFIG_DIR.rglob('*.py'))
ISDA_KEYS = {'lambda0', 'covariance', 'lambda_by', 'sync_ranks',
             'packed_covariance'}
HEADS = ('decode_head', 'auxiliary_head')


def name(path):
    return str(path.relative_to(CONFIG_DIR))


@pytest.mark.parametrize('path', CONFIGS, ids=name)
def test_config_builds(path):
    init_default_scope('mmseg')
    cfg = Config.fromfile(path)
    assert 'isda_mm' in cfg.custom_imports.imports
    model = MODELS.build(cfg.model)
    for key in HEADS:
        heads = cfg.model.get(key)
        if not heads:
            continue
        built = getattr(model, key)
        if isinstance(heads, dict):
            heads, built = [heads], [built]
        assert [type(h).__name__ for h in built] == [h.type for h in heads]


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if '-isda-' in p.name], ids=name)
def test_isda_config_is_baseline_plus_heads(path):
    isda = Config.fromfile(path).to_dict()
    baseline = Config.fromfile(
        path.with_name(path.name.replace('-isda-', '-'))).to_dict()
    for key in HEADS:
        if key not in baseline['model']:
            continue
        heads, stocks = isda['model'].pop(key), baseline['model'].pop(key)
        if isinstance(stocks, dict):
            heads, stocks = [heads], [stocks]
        assert len(heads) == len(stocks)
        for head, stock in zip(heads, stocks):
            assert head.pop('type') == 'ISDA' + stock.pop('type')
            assert set(head) - set(stock) <= ISDA_KEYS
            assert head.pop('lambda0') == 7.5
            assert head.pop('covariance') == 'diagonal'
            assert {k: head[k] for k in stock} == stock
    # Helper variables of the configs, not settings.
    for cfg in (isda, baseline):
        for key in ('isda', 'aux_head', 'stage'):
            cfg.pop(key, None)
    assert isda == baseline

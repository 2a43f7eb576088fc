"""The configs with ISDA in the RoI head (``isda`` as a training-settings
word) and their baselines parse and build; each is its baseline with the
bbox head(s) made ISDA (tests/test_detection/test_pretrained_configs.py
covers the ISDA-pretrained backbone configs)."""
import re
from pathlib import Path

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import isda_mm  # noqa: F401

CONFIG_DIR = Path(__file__).parents[2] / 'configs' / 'detection'
ISDA_CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py')
                      if re.search(r'[_-]isda-', p.name))
ISDA_KEYS = {'lambda0', 'covariance', 'background', 'lambda_by',
             'sync_ranks', 'packed_covariance'}


def name(path):
    return str(path.relative_to(CONFIG_DIR))


def baseline_of(path):
    return path.with_name(re.sub(r'([_-])isda-', r'\1', path.name))


def bbox_heads(cfg):
    heads = cfg['model']['roi_head']['bbox_head']
    return [heads] if isinstance(heads, dict) else heads


@pytest.mark.parametrize(
    'path', ISDA_CONFIGS + [baseline_of(p) for p in ISDA_CONFIGS], ids=name)
def test_config_builds(path):
    init_default_scope('mmdet')
    cfg = Config.fromfile(path)
    assert 'isda_mm' in cfg.custom_imports.imports
    cfg.model.backbone.init_cfg = None  # nothing to download
    model = MODELS.build(cfg.model)
    built = model.roi_head.bbox_head
    built = built if isinstance(cfg.model.roi_head.bbox_head, list) else [
        built]
    assert [type(h).__name__ for h in built] == [
        h['type'] for h in bbox_heads(cfg)]


@pytest.mark.parametrize('path', ISDA_CONFIGS, ids=name)
def test_isda_config_is_baseline_plus_bbox_heads(path):
    isda = Config.fromfile(path).to_dict()
    baseline = Config.fromfile(baseline_of(path)).to_dict()
    heads, stocks = bbox_heads(isda), bbox_heads(baseline)
    assert len(heads) == len(stocks)
    for head, stock in zip(heads, stocks):
        head, stock = dict(head), dict(stock)
        assert head.pop('type') == 'ISDA' + stock.pop('type')
        assert set(head) - set(stock) == ISDA_KEYS & set(head)
        assert {k: head[k] for k in stock} == stock
    for cfg in (isda, baseline):
        cfg['model']['roi_head'].pop('bbox_head')
    assert isda == baseline

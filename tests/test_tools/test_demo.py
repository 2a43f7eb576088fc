"""The main job, cut to one epoch: real digits, both configs, table, plot.

Everything goes to a temporary folder (``--work-dir``, ``--data-root``),
nothing into the repository. One epoch (22 iterations) reaches 57-70 %
top-1 on the 450 test digits, baseline and ISDA alike (seeds 0-3 on this
2-core CPU, 2026-12); a model that does not learn stays near chance, 10 %.
"""
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).parents[2]
# Well above chance (10 %), well below what one epoch reaches (>= 57 %).
MIN_TOP1 = 40.0
TRAIN_IMAGES, TEST_IMAGES = 1347, 450


def rows(table):
    """``{model: (final top-1, best top-1)}`` of the demo's table."""
    found = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip('|').split('|')]
        found[cells[0]] = (float(cells[1]), float(cells[2]))
    return found


def statistics_count(checkpoint):
    """Samples the ISDA statistics of a checkpoint have seen (None if it
    holds none)."""
    state = torch.load(checkpoint, map_location='cpu',
                       weights_only=False)['state_dict']
    counts = [v for k, v in state.items() if k.endswith('estimator.count')]
    return int(sum(c.sum() for c in counts)) if counts else None


def test_demo_one_epoch(tmp_path):
    work_dir, data_root = tmp_path / 'demo', tmp_path / 'digits'
    out = subprocess.run(
        [sys.executable, 'tools/demo.py', '--epochs', '1', '--work-dir',
         str(work_dir), '--data-root', str(data_root)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=600)
    # The digits, exported where asked, all of them.
    for split, n in (('train', TRAIN_IMAGES), ('test', TEST_IMAGES)):
        folders = sorted(p.name for p in (data_root / split).iterdir())
        assert folders == [str(d) for d in range(10)]
        assert len(list((data_root / split).glob('*/*.png'))) == n
    assert (work_dir / 'curves.png').stat().st_size > 0
    table = (work_dir / 'results.md').read_text()
    assert table.strip() in out.stdout
    results = rows(table)
    assert list(results) == ['baseline', 'ISDA']
    for name, (final, best) in results.items():
        assert MIN_TOP1 <= final <= best <= 100, (name, final, best)
    # The ISDA run trained with ISDA: its statistics saw every training
    # image once; the baseline has none.
    assert statistics_count(work_dir / 'ISDA' / 'epoch_1.pth') == \
        TRAIN_IMAGES
    assert statistics_count(work_dir / 'baseline' / 'epoch_1.pth') is None

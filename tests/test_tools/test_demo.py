"""The main job, cut to one epoch: real digits, both configs, table, plot."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_demo_one_epoch(tmp_path):
    work_dir = tmp_path / 'demo'
    out = subprocess.run(
        [sys.executable, 'tools/demo.py', '--epochs', '1', '--work-dir',
         str(work_dir)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=600)
    assert '| baseline |' in out.stdout and '| ISDA |' in out.stdout
    assert (work_dir / 'curves.png').stat().st_size > 0
    table = (work_dir / 'results.md').read_text().splitlines()
    isda_row = table[3].split('|')
    assert 0 < float(isda_row[2]) <= 100  # final top-1 of the ISDA run
    assert (ROOT / 'data' / 'digits' / 'test' / '9').is_dir()

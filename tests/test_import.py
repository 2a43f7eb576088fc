"""``import isda_mm`` registers the adapters of the installed toolkits and
quietly skips absent ones (DESIGN.md §5)."""
import subprocess
import sys

import pytest

TOOLKITS = {'mmpretrain': 'classification', 'mmseg': 'segmentation',
            'mmdet': 'detection'}
CHECK = """
import importlib.util, sys
absent = {absent!r}
found = importlib.util.find_spec
importlib.util.find_spec = lambda name, *args: (
    None if name in absent else found(name, *args))
import isda_mm
for toolkit, adapter in {toolkits!r}.items():
    loaded = 'isda_mm.' + adapter in sys.modules
    assert loaded == (toolkit not in absent), (toolkit, loaded)
"""


# All present: test_every_adapter_registers_in_its_toolkit, in process.
@pytest.mark.parametrize('absent', [('mmseg', 'mmdet'), tuple(TOOLKITS)])
def test_adapters_follow_installed_toolkits(absent):
    code = CHECK.format(absent=set(absent), toolkits=TOOLKITS)
    subprocess.run([sys.executable, '-c', code], check=True, timeout=300)


def test_every_adapter_registers_in_its_toolkit():
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG

    import isda_mm  # noqa: F401
    for registry, name in ((CLS, 'ISDALinearClsHead'),
                           (SEG, 'ISDAASPPHead'),
                           (DET, 'ISDAShared2FCBBoxHead')):
        assert registry.get(name) is not None, name

"""Write the ISDA twin of an OpenMMLab config (the ``isda-config`` command).

    python tools/isda_config.py CONFIG [--out PATH] [--lambda0 X]
        [--covariance full|diagonal] [--dry-run] [--force]
    python tools/isda_config.py --zoo mmpretrain mmseg mmdet

All of the logic, and its documentation, is in :mod:`isda_mm.twin`.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from isda_mm.twin import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

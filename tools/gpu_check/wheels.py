"""Which prepared wheels the GPU check installs, and whether the result
holds together. Run by the Python under test.

``python tools/gpu_check/wheels.py select DIR`` prints the wheels of ``DIR``
to install: the OpenMMLab packages always, ``setuptools`` when the one
installed has no ``pkg_resources`` (81 and later; mmengine 0.10 resolves
``mmseg::`` scopes with it), and every other wheel whose distribution is not
installed at all. What the machine already has (numpy, scipy, rich...) is
kept, so nothing its torch needs is replaced.

``python tools/gpu_check/wheels.py check`` prints every requirement of the
OpenMMLab packages that the environment does not meet (opencv-python is met
by opencv-python-headless: both install ``cv2``) and exits 1 if there is one.
"""
import glob
import os.path as osp
import re
import sys
from importlib import metadata

OURS = ('mmengine', 'mmcv', 'mmpretrain', 'mmsegmentation', 'mmdet')
SAME = {'opencv-python': ('opencv-python-headless', 'opencv-contrib-python',
                          'opencv-contrib-python-headless')}


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def installed(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def select(folder):
    for path in sorted(glob.glob(osp.join(folder, '*.whl'))):
        name = canonical(osp.basename(path).split('-')[0])
        version = installed(name)
        if name in OURS or version is None or (
                name == 'setuptools' and int(version.split('.')[0]) >= 81):
            print(path)


def check():
    from packaging.requirements import Requirement
    problems = []
    for dist in OURS:
        if installed(dist) is None:
            problems.append(f'{dist} is not installed')
            continue
        for text in metadata.requires(dist) or ():
            req = Requirement(text)
            if req.marker and not req.marker.evaluate({'extra': ''}):
                continue
            names = (req.name, ) + SAME.get(canonical(req.name), ())
            versions = [v for v in map(installed, names) if v]
            if not any(req.specifier.contains(v, prereleases=True)
                       for v in versions):
                problems.append(f'{dist} needs {req}, found '
                                f'{versions[0] if versions else "nothing"}')
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == '__main__':
    if sys.argv[1:2] == ['select'] and len(sys.argv) == 3:
        select(sys.argv[2])
    elif sys.argv[1:] == ['check']:
        sys.exit(check())
    else:
        sys.exit(__doc__)

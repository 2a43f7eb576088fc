from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open('isda_mm/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='isda-mm',
    version=read_version(),
    description='Implicit Semantic Data Augmentation (ISDA) for OpenMMLab: '
    'mmpretrain, mmsegmentation and mmdet',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs*', 'tools*', 'tests*')),
    python_requires='>=3.9',
    # mmengine (0.10.7) resolves the zoos' scopes ('mmpretrain::...') with
    # pkg_resources, which setuptools 81 removed and torch >= 2.6 no longer
    # keeps out. Toolkits are optional: an adapter registers only if its
    # toolkit imports.
    install_requires=['torch>=2.0', 'mmengine>=0.8', 'setuptools<81'],
    extras_require={
        # mmcv < 2.2 for mmdet 3.3; mmpretrain imports torchvision and
        # mmsegmentation ftfy and regex without declaring them
        # (tools/check_install.sh finds such gaps).
        'all': [
            'mmcv>=2.0.0,<2.2.0', 'mmpretrain>=1.0', 'mmsegmentation>=1.0',
            'mmdet>=3.0', 'torchvision', 'ftfy', 'regex'
        ],
        'tests': ['pytest'],
    },
    # The ISDA twin of any config: isda_mm/twin/ (tools/isda_config.py).
    entry_points={
        'console_scripts': ['isda-config = isda_mm.twin:main'],
    },
    zip_safe=False,
)

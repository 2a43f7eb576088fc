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
    # Toolkits are optional: an adapter registers only if its toolkit imports.
    install_requires=['torch>=2.0', 'mmengine>=0.8'],
    extras_require={
        'all': ['mmpretrain>=1.0', 'mmsegmentation>=1.0', 'mmdet>=3.0'],
        'tests': ['pytest'],
    },
    zip_safe=False,
)

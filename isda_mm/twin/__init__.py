"""``isda-config``: write the ISDA twin of an OpenMMLab config.

Usage::

    isda-config CONFIG [--out PATH] [--lambda0 X] [--covariance KIND]
                [--dry-run] [--force]
    isda-config --zoo mmpretrain mmseg mmdet     # coverage table (Markdown)

(``python tools/isda_config.py ...`` and ``python -m isda_mm.twin ...`` are
the same command.) ``CONFIG`` is a classic (``_base_``-style) config file,
or a zoo config by scope such as
``mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py``.

What it does, one module per step:

1. **Find the classifier heads** (:mod:`.heads`). ``cfg.model`` is walked
   recursively; a head is any dict whose ``type`` names a module of the
   toolkit's ``MODELS`` registry (the config's ``default_scope``, or a
   ``scope.`` prefix) for which ``'ISDA' + type`` is registered too.
   Support is read from the registries at run time, never from a list kept
   here. A head's own arguments are not searched further.
2. **Decide each head by building it** (:mod:`.decide`), weights on the
   meta device (:mod:`.meta`): it builds -> ISDA is enabled; it is refused
   with the first sentence of the error (why, and what to use instead); or,
   if the stock head cannot be built from its config alone either, or the
   twin fails otherwise, the head is *undecided*.
3. **Choose the ISDA settings** (:mod:`.settings`; ``--lambda0`` and
   ``--covariance`` override both rules): mmpretrain heads the paper's
   ImageNet setting from 1000 classes (diagonal; ``lambda0`` of the
   backbone family: 5 for ResNet-101, 1 for DenseNet, 7.5 for ResNet-50/152,
   ResNeXt and every backbone the paper does not give), else its CIFAR
   setting (``lambda0=0.5``, full, diagonal above 1 GiB of covariances);
   mmseg ``lambda0=7.5``, diagonal, on every decode and
   auxiliary head; mmdet ``lambda0=0.5``, diagonal, on each RoI bbox head
   (every cascade stage); any other toolkit the twin's own defaults.
4. **Write a thin child config** (:mod:`.write`) with ``_base_`` (the
   original's path relative to the output file, or the scope path as
   given), ``custom_imports`` with ``isda_mm`` added to the original's
   imports, and only ``type``, ``lambda0`` and ``covariance`` of each
   enabled head, at their place in ``model``, as mmengine's
   ``Config.pretty_text`` writes them. mmengine replaces lists wholesale, so
   a list that holds an enabled head (cascade stages, lists of decode heads)
   is written out whole. Before it is written, the twin is loaded back with
   ``Config.fromfile`` and checked to equal the original with exactly those
   fields changed.

``--zoo`` (:mod:`.zoo`) decides every config of the installed zoos, parsed
fast (:mod:`.parsing`), and prints the coverage table; :mod:`.cli` holds
the command line.

Output name (``--out`` overrides; an existing file is kept unless
``--force``): next to a config file, or in the current directory for a scope
path, named OpenMMLab-style as this repository names its ISDA configs (see
:func:`twin_name`): ``-isda`` follows the GPUs x batch field
(``resnet50_8xb32_in1k`` -> ``resnet50_8xb32-isda_in1k``,
``deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024`` ->
``deeplabv3_r50-d8_4xb2-isda-40k_cityscapes-512x1024``); without one,
``isda-`` opens the schedule field before the dataset
(``faster-rcnn_r50_fpn_1x_coco`` -> ``faster-rcnn_r50_fpn_isda-1x_coco``);
names of fewer than three fields get ``_isda``.

Exit status: 0 if at least one head got ISDA (and the twin was written or,
with ``--dry-run``, printed), 1 if none could (heads found but all refused
or undecided, or no classifier head found; the report says which) or the
twin cannot be written, 2 for usage errors (bad arguments, a config that
cannot be read, an output that exists).

This package imports no toolkit (nor torch or mmengine) until it is used;
``import isda_mm`` itself registers the ISDA heads of the installed
toolkits.
"""
from .cli import main
from .meta import meta_weights, quiet
from .parsing import fast_parsing
from .write import make_twin
from .zoo import coverage_table, parse_zoo, walk_zoo

# The command and what scripts (and the zoo tests) call; the rest lives in
# the modules: cli, decide, heads, meta, parsing, settings, write, zoo.
__all__ = [
    'coverage_table', 'fast_parsing', 'main', 'make_twin',
    'meta_weights', 'parse_zoo', 'quiet', 'walk_zoo'
]

"""The ISDA settings a twin gets (step 3 of ``isda-config``): the paper's
table, per dataset and, on ImageNet, per backbone family (Wang et al.,
T-PAMI 2021, Sec. 5; NeurIPS 2019, Sec. 5).

The rules (``--lambda0`` and ``--covariance`` override each):

* mmpretrain, ImageNet-scale heads (``num_classes >= 1000``): diagonal
  covariance and the paper's ImageNet ``lambda0`` of the config's
  ``model.backbone`` (its ``type``, a ``scope.`` prefix dropped, and its
  ``depth``):

  ============================================  =========  ==============
  ``model.backbone``                            lambda0    paper
  ============================================  =========  ==============
  ``ResNet``/``ResNetV1c``/``ResNetV1d``, 50    7.5        ResNet-50
  same types, ``depth=101``                     5          ResNet-101
  same types, ``depth=152``                     7.5        ResNet-152
  ``ResNeXt`` (any depth)                       7.5        ResNeXt-50/101
  ``DenseNet`` (any ``arch``)                   1          DenseNet-BC
  anything else (ResNet-18/34, Swin, ViT, ...)  7.5        none: default
  ============================================  =========  ==============

  ``ResNetV1c``/``ResNetV1d`` only change the stem and the downsampling
  shortcut of the same network, so they take the ResNet of their depth.
  The paper gives DenseNet-BC-121 and -265 the same ``lambda0``, so every
  DenseNet takes it. A backbone the paper gives no ``lambda0`` for keeps
  7.5, the value it gives most of its ImageNet networks (ResNet-50, the
  usual starting point); the type is matched by name, so subclasses of
  these backbones (``SEResNet``, ``ResNeSt``, ``Res2Net``, ...) are not the
  paper's networks and keep it too.
* mmpretrain, other heads: the paper's CIFAR setting, ``lambda0=0.5`` with
  full covariance, whatever the backbone, unless the full covariances would
  take more than 1 GiB (``num_classes * width**2`` float32 values, summed
  over the head's classifiers): then diagonal.
* mmseg: ``lambda0=7.5``, diagonal, on every decode and auxiliary head (the
  paper's Cityscapes setting).
* mmdet: ``lambda0=0.5``, diagonal, on each RoI bbox head (not in the
  paper; README's table).
* any other toolkit: the twin's own defaults (only ``type`` changes).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

COVARIANCES = ('full', 'diagonal')
# Above this many bytes of full covariances, mmpretrain heads go diagonal.
FULL_COVARIANCE_LIMIT = 1 << 30
IMAGENET_SCALE = 1000
# The paper's ImageNet lambda0 by backbone type: one value for the family,
# or one per depth (a depth the paper does not give takes the default).
RESNETS = {50: 7.5, 101: 5.0, 152: 7.5}
IMAGENET_LAMBDA0: Dict[str, Any] = {
    'ResNet': RESNETS,
    'ResNetV1c': RESNETS,
    'ResNetV1d': RESNETS,
    'ResNeXt': 7.5,
    'DenseNet': 1.0,
}
# Backbones the paper gives no ImageNet lambda0 for: ResNet-50's.
DEFAULT_IMAGENET_LAMBDA0 = 7.5
CIFAR_LAMBDA0 = 0.5
# Fixed ISDA settings of the dense-prediction toolkits (README's table).
FIXED_SETTINGS = {
    'mmseg': dict(lambda0=7.5, covariance='diagonal'),
    'mmdet': dict(lambda0=0.5, covariance='diagonal'),
}


def backbone_type(backbone: Any) -> Optional[str]:
    """The type name of a backbone config, its ``scope.`` prefix dropped
    (None if it has no string type)."""
    kind = backbone.get('type') if isinstance(backbone, dict) else None
    return kind.rpartition('.')[2] if isinstance(kind, str) else None


def imagenet_lambda0(backbone: Any) -> float:
    """The paper's ImageNet ``lambda0`` for a backbone config (the module
    docstring's table).

    Args:
        backbone (dict | None): the config's ``model.backbone``.

    Returns:
        float: its ``lambda0``; :data:`DEFAULT_IMAGENET_LAMBDA0` for a
        backbone (or depth) the paper gives none for.
    """
    rule = IMAGENET_LAMBDA0.get(backbone_type(backbone))
    if isinstance(rule, dict):
        rule = rule.get(backbone.get('depth'))
    return DEFAULT_IMAGENET_LAMBDA0 if rule is None else float(rule)


def classifier_sizes(module) -> List[Tuple[int, int]]:
    """``(num_classes, feature width)`` of each ISDA statistics estimator
    in a built ISDA head.

    Args:
        module (torch.nn.Module): the built ISDA head.

    Returns:
        list[tuple[int, int]]: one pair per estimator.
    """
    from isda_mm.core import CovarianceEstimator
    return [(m.num_classes, m.feature_dim) for m in module.modules()
            if isinstance(m, CovarianceEstimator)]


def isda_settings(scope: str, sizes: Sequence[Tuple[int, int]],
                  lambda0: Optional[float] = None,
                  covariance: Optional[str] = None,
                  backbone: Any = None) -> Dict[str, Any]:
    """``lambda0`` and ``covariance`` for a head (the module docstring's
    rules); the given values win.

    Args:
        scope (str): the head's toolkit.
        sizes (Sequence[tuple[int, int]]): its classifiers'
            ``(num_classes, width)``, from :func:`classifier_sizes`.
        lambda0 (float, optional): ``--lambda0``. Defaults to None.
        covariance (str, optional): ``--covariance``. Defaults to None.
        backbone (dict, optional): the config's ``model.backbone``, which
            picks ``lambda0`` of ImageNet-scale mmpretrain heads. Defaults
            to None (the default ImageNet ``lambda0``).

    Returns:
        dict: the settings to write; empty for the twin's defaults.
    """
    if scope in FIXED_SETTINGS:
        chosen = dict(FIXED_SETTINGS[scope])
    elif scope == 'mmpretrain' and sizes:
        if max(c for c, _ in sizes) >= IMAGENET_SCALE:
            chosen = dict(lambda0=imagenet_lambda0(backbone),
                          covariance='diagonal')
        else:
            full_bytes = sum(c * d * d * 4 for c, d in sizes)
            chosen = dict(lambda0=CIFAR_LAMBDA0, covariance='full'
                          if full_bytes <= FULL_COVARIANCE_LIMIT else
                          'diagonal')
    else:
        chosen = {}
    if lambda0 is not None:
        chosen['lambda0'] = lambda0
    if covariance is not None:
        chosen['covariance'] = covariance
    return chosen

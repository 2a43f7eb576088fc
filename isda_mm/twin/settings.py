"""The ISDA settings a twin gets (step 3 of ``isda-config``): the paper's
per dataset, ``lambda0`` and covariance (Wang et al., T-PAMI 2021,
Sec. 5: CIFAR ``lambda0=0.5`` full, ImageNet ``lambda0=7.5`` diagonal,
Cityscapes ``lambda0=7.5``).

``--lambda0`` and ``--covariance`` override both rules:

* mmpretrain: ImageNet-scale heads (``num_classes >= 1000``) get the
  ImageNet setting; other heads the CIFAR setting, unless the full
  covariances would take more than 1 GiB (``num_classes * width**2``
  float32 values, summed over the head's classifiers): then diagonal.
* mmseg: ``lambda0=7.5``, diagonal, on every decode and auxiliary head.
* mmdet: ``lambda0=0.5``, diagonal, on each RoI bbox head.
* any other toolkit: the twin's own defaults (only ``type`` changes).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

COVARIANCES = ('full', 'diagonal')
# Above this many bytes of full covariances, mmpretrain heads go diagonal.
FULL_COVARIANCE_LIMIT = 1 << 30
IMAGENET_SCALE = 1000
# Fixed ISDA settings of the dense-prediction toolkits (README's table).
FIXED_SETTINGS = {
    'mmseg': dict(lambda0=7.5, covariance='diagonal'),
    'mmdet': dict(lambda0=0.5, covariance='diagonal'),
}


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
                  covariance: Optional[str] = None) -> Dict[str, Any]:
    """``lambda0`` and ``covariance`` for a head (the module docstring's
    rules); the given values win.

    Args:
        scope (str): the head's toolkit.
        sizes (Sequence[tuple[int, int]]): its classifiers'
            ``(num_classes, width)``, from :func:`classifier_sizes`.
        lambda0 (float, optional): ``--lambda0``. Defaults to None.
        covariance (str, optional): ``--covariance``. Defaults to None.

    Returns:
        dict: the settings to write; empty for the twin's defaults.
    """
    if scope in FIXED_SETTINGS:
        chosen = dict(FIXED_SETTINGS[scope])
    elif scope == 'mmpretrain' and sizes:
        if max(c for c, _ in sizes) >= IMAGENET_SCALE:
            chosen = dict(lambda0=7.5, covariance='diagonal')
        else:
            full_bytes = sum(c * d * d * 4 for c, d in sizes)
            chosen = dict(lambda0=0.5, covariance='full'
                          if full_bytes <= FULL_COVARIANCE_LIMIT else
                          'diagonal')
    else:
        chosen = {}
    if lambda0 is not None:
        chosen['lambda0'] = lambda0
    if covariance is not None:
        chosen['covariance'] = covariance
    return chosen

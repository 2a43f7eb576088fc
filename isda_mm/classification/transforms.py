"""Cutout as the ISDA paper's CIFAR experiments apply it.

DeVries & Taylor, "Improved Regularization of Convolutional Neural Networks
with Cutout" (2017), Section 3: one square of side 16 is zeroed at a centre
drawn uniformly over the image, and the parts that fall outside are clipped.
The ISDA paper's Table 4 (T-PAMI 2021) trains with this Cutout, alone and
after AutoAugment or RandAugment.

mmpretrain's ``Cutout`` (``mmcv.cutout``) keeps the square whole by moving
it inside the image at the top and left borders, so near those borders it
hides more pixels than this one; ``ClippedCutout`` keeps the clipped
geometry.
"""
from numbers import Number
from typing import Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ClippedCutout(BaseTransform):
    """Fill ``n_holes`` squares, clipped at the image borders.

    Each hole's centre ``(y, x)`` is an integer drawn uniformly from
    ``[0, h) x [0, w)``; the hole covers rows ``[y - length // 2,
    y + length // 2)`` and columns likewise, clipped to the image. Holes may
    overlap. Applied to every image (no probability), on the uint8 image
    before normalisation, so ``pad_val=0`` is the black the paper's code
    writes before it normalises.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        n_holes (int): Number of squares per image. Defaults to 1.
        length (int): Side of each square in pixels. Defaults to 16.
        pad_val (int | Sequence[int]): Value written into the squares, one
            per channel or one for all. Defaults to 0.
    """

    def __init__(self,
                 n_holes: int = 1,
                 length: int = 16,
                 pad_val: Union[int, Sequence[int]] = 0) -> None:
        if not isinstance(n_holes, int) or n_holes < 1:
            raise ValueError(f'ClippedCutout: n_holes={n_holes!r}; set '
                             'n_holes to a positive integer')
        if not isinstance(length, int) or length < 2:
            raise ValueError(f'ClippedCutout: length={length!r} hides no '
                             'pixel; set length to an integer >= 2')
        if not isinstance(pad_val, Number):
            pad_val = tuple(pad_val)
        self.n_holes = n_holes
        self.length = length
        self.pad_val = pad_val

    @cache_randomness
    def _centres(self, height: int,
                 width: int) -> Tuple[np.ndarray, np.ndarray]:
        return (np.random.randint(height, size=self.n_holes),
                np.random.randint(width, size=self.n_holes))

    def transform(self, results: dict) -> dict:
        """Cut the holes out of ``results['img']``.

        Args:
            results (dict): The pipeline's results, with ``img`` (H, W) or
                (H, W, C).

        Returns:
            dict: ``results`` with a new ``img`` holding the holes.
        """
        img = results['img'].copy()
        height, width = img.shape[:2]
        half = self.length // 2
        for y, x in zip(*self._centres(height, width)):
            img[max(y - half, 0):min(y + half, height),
                max(x - half, 0):min(x + half, width)] = self.pad_val
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(n_holes={self.n_holes}, '
                f'length={self.length}, pad_val={self.pad_val})')

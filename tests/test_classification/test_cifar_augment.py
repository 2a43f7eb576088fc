"""The Table 4 augmentations of the ISDA paper (T-PAMI 2021) as configured.

* ``cifar10_autoaugment_policy`` is the paper's code's ``CIFAR10Policy``
  operation for operation (kind, probability, magnitude, sign), checked
  against that table and its magnitude ranges written here as data;
* the mmpretrain operations it uses act like the PIL calls of the paper's
  code where the policy's comment says they do (rotation direction
  included);
* the crop pads by reflection, as the paper's code;
* ``ClippedCutout`` cuts the paper's code's clipped square;
* RandAugment holds the RandAugment paper's 14 operations on AutoAugment's
  ranges;
* every Table 4 pipeline runs on a generated uint8 32x32 image.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmpretrain.registry import TRANSFORMS
from mmpretrain.utils import register_all_modules
from PIL import Image, ImageEnhance, ImageOps

from isda_mm.classification import ClippedCutout

ROOT = Path(__file__).parents[2]
PIPELINES = ROOT / 'configs' / '_base_' / 'datasets' / 'pipelines'
TABLE4_PIPELINES = [
    'cutout_train_pipeline', 'autoaugment_train_pipeline',
    'randaugment_n3_m5_train_pipeline', 'randaugment_n2_m14_train_pipeline',
    'randaugment_n3_m9_train_pipeline'
]

# The paper's code (autoaugment.py, CIFAR10Policy): (operation, probability,
# magnitude bin) twice per sub-policy, in its order.
RELEASED_POLICY = [
    ('invert', 0.1, 7, 'contrast', 0.2, 6),
    ('rotate', 0.7, 2, 'translateX', 0.3, 9),
    ('sharpness', 0.8, 1, 'sharpness', 0.9, 3),
    ('shearY', 0.5, 8, 'translateY', 0.7, 9),
    ('autocontrast', 0.5, 8, 'equalize', 0.9, 2),
    ('shearY', 0.2, 7, 'posterize', 0.3, 7),
    ('color', 0.4, 3, 'brightness', 0.6, 7),
    ('sharpness', 0.3, 9, 'brightness', 0.7, 9),
    ('equalize', 0.6, 5, 'equalize', 0.5, 1),
    ('contrast', 0.6, 7, 'sharpness', 0.6, 5),
    ('color', 0.7, 7, 'translateX', 0.5, 8),
    ('equalize', 0.3, 7, 'autocontrast', 0.4, 8),
    ('translateY', 0.4, 3, 'sharpness', 0.2, 6),
    ('brightness', 0.9, 6, 'color', 0.2, 8),
    ('solarize', 0.5, 2, 'invert', 0.0, 3),
    ('equalize', 0.2, 0, 'autocontrast', 0.6, 0),
    ('equalize', 0.2, 8, 'equalize', 0.8, 4),
    ('color', 0.9, 9, 'equalize', 0.6, 6),
    ('autocontrast', 0.8, 4, 'solarize', 0.2, 8),
    ('brightness', 0.1, 3, 'color', 0.7, 0),
    ('solarize', 0.4, 5, 'autocontrast', 0.9, 3),
    ('translateY', 0.9, 9, 'translateY', 0.7, 9),
    ('autocontrast', 0.9, 2, 'solarize', 0.8, 3),
    ('equalize', 0.8, 8, 'invert', 0.1, 3),
    ('translateY', 0.7, 9, 'autocontrast', 0.9, 1),
]
# Its magnitude of each bin, and whether the operation draws a random sign.
RANGES = {
    'shearX': np.linspace(0, 0.3, 10), 'shearY': np.linspace(0, 0.3, 10),
    'translateX': np.linspace(0, 150 / 331, 10),
    'translateY': np.linspace(0, 150 / 331, 10),
    'rotate': np.linspace(0, 30, 10),
    'color': np.linspace(0, 0.9, 10), 'contrast': np.linspace(0, 0.9, 10),
    'sharpness': np.linspace(0, 0.9, 10),
    'brightness': np.linspace(0, 0.9, 10),
    'posterize': np.round(np.linspace(8, 4, 10)).astype(int),
    'solarize': np.linspace(256, 0, 10),
}
SIGNED = {'shearX', 'shearY', 'translateX', 'translateY', 'color',
          'contrast', 'sharpness', 'brightness'}
# operation -> (mmpretrain type, attribute holding the magnitude, direction)
MMPRETRAIN = {
    'shearX': ('Shear', 'magnitude', 'horizontal'),
    'shearY': ('Shear', 'magnitude', 'vertical'),
    'translateX': ('Translate', 'magnitude', 'horizontal'),
    'translateY': ('Translate', 'magnitude', 'vertical'),
    'rotate': ('Rotate', 'angle', None),
    'color': ('ColorTransform', 'magnitude', None),
    'contrast': ('Contrast', 'magnitude', None),
    'sharpness': ('Sharpness', 'magnitude', None),
    'brightness': ('Brightness', 'magnitude', None),
    'posterize': ('Posterize', 'bits', None),
    'solarize': ('Solarize', 'thr', None),
    'autocontrast': ('AutoContrast', None, None),
    'equalize': ('Equalize', None, None),
    'invert': ('Invert', None, None),
}


@pytest.fixture(scope='module', autouse=True)
def _registered():
    register_all_modules(init_default_scope=False)


@pytest.fixture(scope='module')
def parts():
    return Config.fromfile(str(PIPELINES / 'cifar_augment.py'))


def build(cfg):
    return TRANSFORMS.build(cfg)


def apply(cfg, img):
    return build(cfg)(dict(img=img.copy()))['img']


def image(seed=0, size=32):
    return np.random.default_rng(seed).integers(
        0, 256, (size, size, 3), dtype=np.uint8)


def smooth_image(size=32):
    """Gradients: geometric operations compare well on them."""
    y, x = np.mgrid[:size, :size]
    return np.stack([x * 8 % 256, y * 8 % 256, (x + y) * 4 % 256],
                    -1).astype(np.uint8)


def test_autoaugment_policy_is_the_papers_code_op_for_op(parts):
    policy = build(dict(type='AutoAugment',
                        policies=parts.cifar10_autoaugment_policy))
    assert len(policy.transforms) == len(RELEASED_POLICY) == 25
    for row, sub in zip(RELEASED_POLICY, policy.transforms):
        assert len(sub.transforms) == 2
        for (name, prob, bin_), op in zip([row[:3], row[3:]],
                                          sub.transforms):
            kind, attribute, direction = MMPRETRAIN[name]
            assert type(op).__name__ == kind, row
            assert op.prob == prob, row
            if direction is not None:
                assert op.direction == direction, row
            if attribute is None:
                continue
            value = getattr(op, attribute)
            if name == 'rotate':
                # counter-clockwise (PIL) is a negative angle for mmcv,
                # with no random sign, as the paper's code
                assert value == pytest.approx(-RANGES[name][bin_]), row
                assert op.random_negative_prob == 0, row
            else:
                assert value == pytest.approx(RANGES[name][bin_]), row
                assert op.random_negative_prob == (
                    0.5 if name in SIGNED else 0), row
            if kind in ('Shear', 'Translate', 'Rotate'):
                assert op.pad_val == 128, row  # the paper's fillcolor


@pytest.mark.parametrize('kind, call', [
    ('Invert', ImageOps.invert),
    ('Equalize', ImageOps.equalize),
    ('AutoContrast', ImageOps.autocontrast),
])
def test_operations_without_magnitude_give_pils_pixels(kind, call):
    img = image() // 2 + 40  # room for AutoContrast to stretch
    assert np.array_equal(apply(dict(type=kind, prob=1.), img),
                          np.asarray(call(Image.fromarray(img))))


@pytest.mark.parametrize('bin_', range(10))
def test_solarize_and_posterize_give_pils_pixels(bin_):
    img = image(bin_)
    threshold, bits = RANGES['solarize'][bin_], RANGES['posterize'][bin_]
    assert np.array_equal(
        apply(dict(type='Solarize', thr=threshold, prob=1.), img),
        np.asarray(ImageOps.solarize(Image.fromarray(img), threshold)))
    assert np.array_equal(
        apply(dict(type='Posterize', bits=int(bits), prob=1.), img),
        np.asarray(ImageOps.posterize(Image.fromarray(img), int(bits))))


@pytest.mark.parametrize('factor', [0.1, 0.6, 1.4, 1.9])
def test_brightness_gives_pils_pixels(factor):
    img = image()
    ours = apply(dict(type='Brightness', magnitude=factor - 1, prob=1.,
                      random_negative_prob=0.), img)
    pil = ImageEnhance.Brightness(Image.fromarray(img)).enhance(factor)
    assert np.array_equal(ours, np.asarray(pil))


@pytest.mark.parametrize('bin_', [3, 8, 9])
def test_translate_is_pils_shift_of_the_same_size(bin_):
    # The paper's code shifts by magnitude * side pixels with a random sign;
    # mmcv's positive offset is PIL's negative one.
    img, magnitude = smooth_image(), RANGES['translateX'][bin_]
    pil = Image.fromarray(img).transform(
        (32, 32), Image.AFFINE, (1, 0, magnitude * 32, 0, 1, 0),
        fillcolor=(128, 128, 128))
    ours = apply(dict(type='Translate', magnitude=-magnitude, prob=1.,
                      random_negative_prob=0.), img)
    assert np.array_equal(ours, np.asarray(pil))


@pytest.mark.parametrize('bin_', [2, 9])
def test_rotation_turns_the_way_the_papers_code_does(parts, bin_):
    """The policy's angle turns the image counter-clockwise, as PIL's
    ``rotate`` with the paper's grey fill; the opposite turn does not."""
    img, angle = smooth_image(), RANGES['rotate'][bin_]
    rotated = Image.fromarray(img).convert('RGBA').rotate(angle)
    pil = np.asarray(Image.composite(
        rotated, Image.new('RGBA', rotated.size, (128, ) * 4),
        rotated).convert('RGB'))
    ours = apply(dict(type='Rotate', angle=-angle, prob=1.,
                      random_negative_prob=0.), img)
    other_way = apply(dict(type='Rotate', angle=angle, prob=1.,
                           random_negative_prob=0.), img)
    # nearest-neighbour rounding differs at a few pixels along edges
    assert (ours == pil).all(-1).mean() > 0.8
    assert (other_way == pil).all(-1).mean() < 0.2


def test_crop_pads_by_reflection_as_the_papers_code(parts):
    img = image()
    padded = torch.nn.functional.pad(
        torch.from_numpy(img).permute(2, 0, 1)[None].float(), (4, ) * 4,
        mode='reflect')[0].permute(1, 2, 0).numpy().astype(np.uint8)
    windows = {padded[i:i + 32, j:j + 32].tobytes()
               for i in range(9) for j in range(9)}
    crop = Compose([build(t) for t in parts.cifar_crop_flip[:2]])
    seen = set()
    for _ in range(40):
        out = crop(dict(img=img.copy()))['img']
        assert out.shape == (32, 32, 3) and out.tobytes() in windows
        seen.add(out.tobytes())
    assert len(seen) > 10  # the crop moves
    # Why two steps: mmpretrain's RandomCrop pads with zeros whatever its
    # padding_mode when given ``padding`` (if this fails, mmpretrain now
    # honours padding_mode and one RandomCrop would do).
    zero = build(dict(type='RandomCrop', crop_size=32, padding=4,
                      padding_mode='reflect'))
    padded_ones = [zero(dict(img=np.full((32, 32, 3), 255, np.uint8)))['img']
                   for _ in range(20)]
    assert any((out == 0).all(-1).any() for out in padded_ones)


def reference_cutout(height, width, y, x, length):
    """The paper's code's mask: rows and columns within ``length // 2``
    before and ``length // 2 - 1`` after the centre, inside the image."""
    keep = np.ones((height, width), bool)
    for i in range(height):
        for j in range(width):
            if (y - length // 2 <= i < y + length // 2
                    and x - length // 2 <= j < x + length // 2):
                keep[i, j] = False
    return keep


@pytest.mark.parametrize('length', [16, 5])
def test_cutout_cuts_the_clipped_square_at_every_centre(length):
    cutout = ClippedCutout(length=length)
    img = np.full((32, 32, 3), 200, np.uint8)
    for y in range(32):
        for x in range(32):
            cutout._centres = lambda h, w, y=y, x=x: ([y], [x])
            out = cutout(dict(img=img.copy()))['img']
            keep = reference_cutout(32, 32, y, x, length)
            assert np.array_equal(out[keep], img[keep]), (y, x)
            assert (out[~keep] == 0).all(), (y, x)
    # in a corner the square is clipped to a quarter; mmpretrain's Cutout
    # would move it inside whole, hence ClippedCutout
    cutout._centres = lambda h, w: ([0], [0])
    out = cutout(dict(img=img.copy()))['img']
    assert (out == 0).all(-1).sum() == (length // 2)**2


def test_cutout_centres_cover_the_image_and_holes_add_up():
    np.random.seed(0)
    cutout = ClippedCutout(n_holes=1, length=16)
    img = np.full((32, 32), 7, np.uint8)  # a grey image, no channels
    areas = [(cutout(dict(img=img.copy()))['img'] == 0).sum()
             for _ in range(2000)]
    # the mean clipped area of a uniform integer centre: (sum over centres
    # of the clipped side) ** 2 / 32 ** 2 per axis pair
    side = np.mean([min(y + 8, 32) - max(y - 8, 0) for y in range(32)])
    assert np.mean(areas) == pytest.approx(side**2, rel=0.05)
    assert min(areas) == 64 and max(areas) == 256
    two = ClippedCutout(n_holes=2, length=4, pad_val=(1, 2, 3))
    two._centres = lambda h, w: ([5, 20], [5, 20])
    out = two(dict(img=np.full((32, 32, 3), 9, np.uint8)))['img']
    assert ((out == (1, 2, 3)).all(-1)).sum() == 2 * 16
    assert 'ClippedCutout(n_holes=2, length=4' in repr(two)


@pytest.mark.parametrize('kwargs, match', [
    (dict(n_holes=0), 'set n_holes to a positive integer'),
    (dict(length=1), 'set length to an integer >= 2'),
    (dict(length=16.0), 'set length to an integer >= 2'),
])
def test_cutout_errors_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClippedCutout(**kwargs)


def test_randaugment_is_the_papers_14_operations_on_autoaugments_ranges(
        parts):
    ops = parts.randaugment_ops
    assert [op.type for op in ops] == [
        'KeyMapper', 'AutoContrast', 'Equalize', 'Rotate', 'Solarize',
        'ColorTransform', 'Posterize', 'Contrast', 'Brightness',
        'Sharpness', 'Shear', 'Shear', 'Translate', 'Translate'
    ]
    assert all(op.get('prob', 1.) == 1. for op in ops)
    # at the top of the 0..30 scale, AutoAugment's largest magnitudes
    top = {'Rotate': 30, 'Solarize': 0, 'ColorTransform': 0.9,
           'Posterize': 4, 'Contrast': 0.9, 'Brightness': 0.9,
           'Sharpness': 0.9, 'Shear': 0.3, 'Translate': 150 / 331}
    transform = build(dict(type='RandAugment', policies=ops,
                           num_policies=1, magnitude_level=30,
                           total_level=30))
    for op in transform.transforms[1:]:
        if op.magnitude_range is not None:
            assert op.random_magnitude() == pytest.approx(
                top[type(op).__name__])
    # the identity leaves the results as they were
    results = dict(img=image(), gt_label=3)
    out = transform.transforms[0](dict(results))
    assert out['img'] is results['img'] and out['gt_label'] == 3


@pytest.mark.parametrize('name, n, m', [
    ('randaugment_n3_m5_train_pipeline', 3, 5),
    ('randaugment_n2_m14_train_pipeline', 2, 14),
    ('randaugment_n3_m9_train_pipeline', 3, 9),
])
def test_randaugment_pipelines_use_their_n_and_m(parts, name, n, m):
    (randaugment, ) = [t for t in parts[name] if t.type == 'RandAugment']
    assert (randaugment.num_policies, randaugment.magnitude_level,
            randaugment.total_level) == (n, m, 30)
    assert randaugment.policies == parts.randaugment_ops


@pytest.mark.parametrize('name', TABLE4_PIPELINES)
def test_table4_pipelines_run_on_a_cifar_image(parts, name):
    steps = [t.type for t in parts[name]]
    assert steps[:3] == ['RandomCrop', 'RandomCrop', 'RandomFlip']
    assert steps[-2:] == ['ClippedCutout', 'PackInputs']  # always last
    pipeline = Compose([build(t) for t in parts[name]])
    np.random.seed(0)
    for seed in range(20):
        out = pipeline(dict(img=image(seed), gt_label=1))
        assert out['inputs'].shape == (3, 32, 32)
        assert out['inputs'].dtype == torch.uint8

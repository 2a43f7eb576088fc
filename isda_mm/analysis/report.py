"""The semantic-directions report of a trained classifier.

Reads (or estimates) the class-conditional covariances that ISDA samples
from (Wang et al., "Regularizing Deep Networks with Semantic Data
Augmentation", T-PAMI 2021, Sec. 3), finds each class's principal
directions and draws the real images along them; ``tools/analysis_tools/
isda_directions.py`` is its command line. mmpretrain is imported only when
a report is made.
"""
import json
import os
import os.path as osp
import re
import warnings
from typing import List, Optional, Sequence

import numpy as np
import torch

from . import plots
from .directions import (
    ClassStatistics,
    augmented_neighbours,
    cumulative_shares,
    estimate_statistics,
    find_statistics,
    order_by_projection,
    projections,
    top_directions,
)

STEPS = (-2, -1, 0, 1, 2)
DEFAULT_CLASSES = 10
NO_STATISTICS = ('{ckpt} holds no ISDA statistics (no *.isda.estimator.* '
                 "buffers: a stock model; the config's head is {head}); "
                 'estimating them (full covariance) from the features of '
                 'the {split} split')


def resolve_classes(names: Optional[Sequence[str]],
                    all_names: Sequence[str]) -> List[int]:
    """Class indices of ``--classes`` (all, or the first ten, if None)."""
    if not names:
        return list(range(min(len(all_names), DEFAULT_CLASSES)))
    unknown = [n for n in names if n not in all_names]
    if unknown:
        raise ValueError(f'--classes: unknown class {unknown[0]!r}; the '
                         f'valid names are {list(all_names)}')
    return [list(all_names).index(n) for n in dict.fromkeys(names)]


def _checkpoint_name(path: str) -> str:
    """A short label: the checkpoint's folder (e.g. a work dir's name)."""
    return osp.basename(osp.dirname(osp.abspath(path))) or osp.basename(path)


def _statistics(state, model, feats, num_classes, estimate, ckpt, split):
    stats = None if estimate else find_statistics(state)
    if stats is None:
        if not estimate:
            print(NO_STATISTICS.format(ckpt=ckpt, split=split,
                                       head=type(model.head).__name__),
                  flush=True)
        stats = estimate_statistics(feats['features'], feats['labels'],
                                    num_classes)
    if stats.num_classes != num_classes or \
            stats.feature_dim != feats['features'].shape[1]:
        raise ValueError(
            f'{ckpt}: its ISDA statistics ({stats.prefix}) are for '
            f'{stats.num_classes} classes of {stats.feature_dim} features, '
            f'but the model has {num_classes} classes of '
            f'{feats["features"].shape[1]}')
    return stats


def make_report(config: str, checkpoint: str, out_dir: str,
                split: str = 'val', classes: Optional[Sequence[str]] = None,
                directions: int = 3, images: int = 8,
                max_samples: Optional[int] = None,
                compare: Optional[str] = None, device: str = 'cpu',
                estimate: bool = False, queries: int = 3,
                steps: Sequence[float] = STEPS, save_arrays: bool = False,
                cfg_options: Optional[dict] = None,
                progress: bool = True) -> dict:
    """Write the pictures and ``summary.json`` of one checkpoint.

    Args:
        config (str): Config file of the model.
        checkpoint (str): Its checkpoint.
        out_dir (str): Output folder (created).
        split (str): ``'train'``, ``'val'`` or ``'test'`` dataloader,
            always with the test pipeline. Defaults to ``'val'``.
        classes (Sequence[str], optional): Class names. Defaults to None:
            all, at most the first ten.
        directions (int): Directions K per class. Defaults to 3.
        images (int): Images M per direction row, at least 2.
            Defaults to 8.
        max_samples (int, optional): Bound on the images whose features
            are extracted (classes take turns). Defaults to None: all.
        compare (str, optional): Second checkpoint of the same config
            (e.g. the baseline), for the spectrum. Defaults to None.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        estimate (bool): Estimate the statistics from the extracted
            features even when a checkpoint holds some. Defaults to False.
        queries (int): Query images per class in the neighbours picture.
            Defaults to 3.
        steps (Sequence[float]): Translations ``t`` (in standard deviations
            along the top direction). Defaults to ``(-2, -1, 0, 1, 2)``.
        save_arrays (bool): Also write ``arrays.npz``: the extracted
            ``features``, ``labels``, ``paths``, the chosen ``classes``
            and their ``mean``, ``covariance``, ``count``, ``directions``
            and ``variances``.
            Defaults to False.
        cfg_options (dict, optional): Overrides merged into the config.
            Defaults to None.
        progress (bool): Progress bars. Defaults to True.

    Returns:
        dict: The summary written to ``summary.json``.
    """
    from mmengine.config import Config

    from .features import (
        build_dataset,
        build_model,
        extract_features,
        feature_layer,
        select_samples,
    )
    if images < 2:
        raise ValueError(f'--images must be at least 2, got {images}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model, state = build_model(cfg, checkpoint, device)
    fc, _ = feature_layer(model.head)
    num_classes, dim = fc.out_features, fc.in_features
    if directions > dim:
        raise ValueError(f'--directions={directions} is larger than the '
                         f'feature dimension A={dim}')
    dataset = build_dataset(cfg, split)
    names = [str(n) for n in (dataset.metainfo.get('classes')
                              or range(num_classes))]
    chosen = resolve_classes(classes, names)
    indices, labels = select_samples(dataset, chosen, max_samples)
    for c in chosen:
        if not (labels == c).any():
            raise ValueError(
                f'--classes: class {names[c]!r} has no samples among the '
                f'{len(labels)} to extract from the {split} split; raise '
                '--max-samples or choose another class')
    loader_cfg = cfg.get(f'{split}_dataloader')
    feats = extract_features(model, dataset, indices, loader_cfg, progress)
    labels = feats['labels']
    stats = _statistics(state, model, feats, num_classes, estimate,
                        checkpoint, split)
    other = None
    if compare is not None:
        model2, state2 = build_model(cfg, compare, device)
        need = estimate or find_statistics(state2) is None
        feats2 = (extract_features(model2, dataset, indices, loader_cfg,
                                   progress) if need else feats)
        other = _statistics(state2, model2, feats2, num_classes, estimate,
                            compare, split)
        if other.source != stats.source:
            warnings.warn(
                f'the two spectra come from different statistics '
                f'({stats.source} / {other.source}); add --estimate to '
                f"compare both on the {split} split's features")
    os.makedirs(out_dir, exist_ok=True)
    summary = dict(
        config=config, checkpoint=checkpoint, split=split,
        statistics=stats.source, statistics_prefix=stats.prefix,
        covariance=stats.kind, feature_dim=dim, num_samples=len(labels),
        directions=directions, images=images, steps=list(steps),
        compare=None if other is None else dict(
            checkpoint=compare, statistics=other.source,
            covariance=other.kind),
        classes=[], files=[])
    arrays = dict(features=feats['features'].numpy(),
                  labels=labels.numpy(), paths=np.array(feats['paths']),
                  classes=np.array(chosen))
    per_class = []
    for c in chosen:
        entry, dirs, values = _class_pictures(stats, c, names, feats,
                                              directions, images, queries,
                                              steps, out_dir, split)
        if other is not None:
            _, _, shares = top_directions(other, c, directions)
            entry['compare_trace'] = other.trace(c)
            entry['compare_shares'] = shares.tolist()
        summary['classes'].append(entry)
        summary['files'] += entry['files']
        per_class.append((dirs.numpy(), values.numpy()))
    curves = [cumulative_shares(stats, c).numpy() for c in chosen]
    compared, legend = None, ('model', 'compared')
    title = (f'{_checkpoint_name(checkpoint)}: explained variance per '
             f'class ({stats.source} {stats.kind} covariance)')
    if other is not None:
        compared = [cumulative_shares(other, c).numpy() for c in chosen]
        legend = tuple(
            f'{_checkpoint_name(path)} ({s.source} {s.kind})'
            for path, s in ((checkpoint, stats), (compare, other)))
        title = (f'Explained variance per class: '
                 f'{_checkpoint_name(checkpoint)} (solid) vs '
                 f'{_checkpoint_name(compare)} (dashed)')
    spectrum = osp.join(out_dir, 'spectrum.png')
    plots.spectrum_plot(curves, [names[c] for c in chosen], spectrum,
                        compared, legend, title=title)
    summary['files'].append(spectrum)
    if save_arrays:
        arrays.update(
            mean=stats.mean[chosen].numpy(),
            covariance=stats.covariance[chosen].numpy(),
            count=stats.count[chosen].numpy(),
            directions=np.stack([d for d, _ in per_class]),
            variances=np.stack([v for _, v in per_class]))
        np.savez(osp.join(out_dir, 'arrays.npz'), **arrays)
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def _class_pictures(stats: ClassStatistics, c: int, names, feats,
                    directions, images, queries, steps, out_dir, split):
    """The directions and neighbours pictures of class ``c``, and its
    summary entry."""
    dirs, values, shares = top_directions(stats, c, directions)
    name = names[c]
    rows = torch.nonzero(feats['labels'] == c).flatten()
    class_feats = feats['features'][rows]
    mean = stats.mean[c]
    paths, offsets = [], []
    for v, var in zip(dirs, values):
        picked = order_by_projection(class_feats, mean, v, images)
        sigma = float(var.sqrt()) or 1.0
        offsets.append((projections(class_feats[picked], mean, v) /
                        sigma).tolist())
        paths.append([feats['paths'][int(rows[i])] for i in picked])
    if len(rows) < images:
        warnings.warn(f'class {name!r} has {len(rows)} samples, fewer than '
                      f'--images={images}')
    slug = re.sub(r'[^A-Za-z0-9_.-]+', '-', name)
    grid = osp.join(out_dir, f'directions_{c:03d}_{slug}.png')
    plots.directions_grid(
        paths, offsets, shares.tolist(),
        f'class {name}: top {directions} directions of its feature '
        f'covariance ({stats.source} statistics, {stats.kind}); '
        f'{len(rows)} {split} images', grid)
    # Queries: the samples nearest the class mean, typical of the class.
    dist = (class_feats.double() - mean).norm(dim=1)
    query_rows = rows[torch.argsort(dist)[:queries]]
    sigma = float(values[0].sqrt())
    near = [augmented_neighbours(feats['features'], int(q), dirs[0], sigma,
                                 steps) for q in query_rows]
    near_paths = [[feats['paths'][int(i)] for i in row] for row in near]
    near_names = [[names[int(feats['labels'][int(i)])] for i in row]
                  for row in near]
    neighbours = osp.join(out_dir, f'neighbours_{c:03d}_{slug}.png')
    plots.neighbours_grid(
        near_paths, near_names, name, steps,
        f'class {name}: real {split} images nearest to a + t·σ·v\n'
        f'(v: direction 1, {100 * float(shares[0]):.1f}% of variance, '
        f'σ = {sigma:.3g})', neighbours)
    entry = dict(
        index=c, name=name, count=int(stats.count[c]),
        extracted=len(rows), trace=stats.trace(c),
        shares=shares.tolist(), variances=values.tolist(),
        rows=paths, offsets=offsets,
        neighbours=[dict(query=row[list(steps).index(0)]
                         if 0 in steps else None, images=row,
                         classes=cls)
                    for row, cls in zip(near_paths, near_names)],
        files=[grid, neighbours])
    return entry, dirs, values

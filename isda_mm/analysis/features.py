"""The features ISDA augments, extracted from a trained mmpretrain model.

ISDA (Wang et al., "Regularizing Deep Networks with Semantic Data
Augmentation", T-PAMI 2021) translates the input of the final linear
classifier. This module builds a model from its config and checkpoint,
builds a split's dataset with the config's test pipeline (no random
augmentation) and returns exactly that input for every sample, as the
head's own ``pre_logits`` gives it. The only module of
:mod:`isda_mm.analysis` that imports mmpretrain.
"""
import copy
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import ProgressBar
from mmpretrain.registry import DATASETS, MODELS
from torch import nn
from torch.utils.data import Subset

from ..classification.heads import FINAL_LINEAR
from .directions import ESTIMATOR

SPLITS = ('train', 'val', 'test')


def feature_layer(head: nn.Module) -> Tuple[nn.Linear, Optional[object]]:
    """The final linear layer of a head and what turns ``pre_logits``'s
    output into that layer's input (None: the output itself).

    Raises:
        ValueError: For a head without a known softmax classifier, naming
            its type and the supported ones.
    """
    for stock in type(head).__mro__:
        if stock in FINAL_LINEAR:
            return FINAL_LINEAR[stock](head)[0]
    names = sorted(h.__name__ for h in FINAL_LINEAR)
    raise ValueError(
        f'model.head is {type(head).__name__}, which this tool does not '
        f'understand: it needs a head with a final linear classifier, one '
        f'of {names} or their ISDA variants')


def build_model(cfg: Config, checkpoint: str,
                device: str = 'cpu') -> Tuple[nn.Module, dict]:
    """The config's model with the checkpoint's weights, in eval mode.

    The checkpoint is read by mmengine's ``load_checkpoint`` (torch's safe
    loader, with the globals :mod:`isda_mm.engine.safe_load` allows). ISDA
    estimator buffers may be on either side only: an ISDA checkpoint loads
    into a stock config and a stock one into an ISDA config.

    Args:
        cfg (Config): The model's config.
        checkpoint (str): Path of the checkpoint.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.

    Returns:
        tuple: The model and the checkpoint's ``state_dict``.

    Raises:
        ValueError: If the checkpoint lacks weights the model needs, or the
            head is not one this tool understands.
    """
    cfg = copy.deepcopy(cfg)
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmpretrain')):
        model = MODELS.build(cfg.model)
    if not hasattr(model, 'head') or not hasattr(model, 'extract_feat'):
        raise ValueError(f'model is {type(model).__name__}; this tool needs '
                         'a classifier with extract_feat and a head '
                         '(e.g. ImageClassifier)')
    feature_layer(model.head)
    ckpt = load_checkpoint(model, checkpoint, map_location='cpu',
                           logger='silent')
    state = ckpt.get('state_dict', ckpt)
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    missing = [k for k in model.state_dict()
               if k not in state and ESTIMATOR not in k]
    if missing:
        raise ValueError(
            f"{checkpoint} does not fit the config's model: it lacks "
            f'{missing[:5]}{" ..." if len(missing) > 5 else ""}')
    unexpected = [k for k in state
                  if k not in model.state_dict() and ESTIMATOR not in k]
    if unexpected:
        warnings.warn(f'{checkpoint}: unused keys {unexpected[:5]}')
    return model.to(device).eval(), state


def _test_pipeline(cfg: Config) -> Optional[list]:
    for key in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset')
        while isinstance(dataset, dict):
            if 'pipeline' in dataset:
                return copy.deepcopy(dataset['pipeline'])
            dataset = dataset.get('dataset')
    return copy.deepcopy(cfg.get('test_pipeline'))


def build_dataset(cfg: Config, split: str = 'val'):
    """The dataset of ``cfg.<split>_dataloader``, with the test pipeline.

    For ``'train'`` the pipeline is replaced by the test (or val) one, so
    that no random augmentation moves the features.

    Args:
        cfg (Config): The config.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
            Defaults to ``'val'``.

    Returns:
        Dataset: The built dataset.
    """
    if split not in SPLITS:
        raise ValueError(f'--split must be one of {SPLITS}, got {split!r}')
    loader = cfg.get(f'{split}_dataloader')
    if not loader or not loader.get('dataset'):
        raise ValueError(f'--split {split}: the config has no '
                         f'{split}_dataloader.dataset')
    dataset = copy.deepcopy(loader['dataset'])
    if split == 'train':
        pipeline = _test_pipeline(cfg)
        inner = dataset
        while 'pipeline' not in inner and isinstance(
                inner.get('dataset'), dict):
            inner = inner['dataset']
        if pipeline is None:
            warnings.warn('the config has no test or val pipeline; the '
                          'train pipeline (random augmentation) is used')
        else:
            inner['pipeline'] = pipeline
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmpretrain')):
        return DATASETS.build(dataset)


def select_samples(dataset, classes: Sequence[int],
                   max_samples: Optional[int] = None,
                   seed: int = 0) -> Tuple[List[int], np.ndarray]:
    """Dataset indices of the chosen classes, at most ``max_samples``.

    When bounded, classes take turns (each class's samples in a seeded
    random order), so every class gets about the same number.

    Args:
        dataset: An mmpretrain (or mmengine wrapper) dataset.
        classes (Sequence[int]): Class indices to keep.
        max_samples (int, optional): Bound. Defaults to None: all.
        seed (int): Seed of the order. Defaults to 0.

    Returns:
        tuple: Sorted dataset indices and their labels (from the
        annotations, before any image is read).
    """
    labels = np.array([dataset.get_cat_ids(i)[0]
                       for i in range(len(dataset))])
    rng = np.random.default_rng(seed)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    if max_samples is None or max_samples >= sum(map(len, pools)):
        chosen = sorted(int(i) for pool in pools for i in pool)
    else:
        chosen = []
        for rank in range(max(map(len, pools))):
            chosen += [int(pool[rank]) for pool in pools if rank < len(pool)]
        chosen = sorted(chosen[:max_samples])
    return chosen, labels[chosen]


@torch.no_grad()
def extract_features(model: nn.Module, dataset, indices: Sequence[int],
                     loader_cfg: Optional[dict] = None,
                     progress: bool = True) -> Dict[str, object]:
    """The classifier's input for each chosen sample.

    Features are ``feature_layer``'s input: ``head.pre_logits`` of
    ``model.extract_feat`` (then the head's own selection, e.g. DeiT's
    class token), i.e. exactly what ISDA translates.

    Args:
        model (nn.Module): The model, in eval mode, on its device.
        dataset: The dataset.
        indices (Sequence[int]): Dataset indices to extract.
        loader_cfg (dict, optional): The config's dataloader settings
            (``batch_size``, ``num_workers``, ``collate_fn``).
            Defaults to None: batches of 32, no workers.
        progress (bool): Show mmengine's progress bar. Defaults to True.

    Returns:
        dict: ``features`` ``(N, A)`` float32 CPU tensor, ``labels``
        ``(N,)`` int64, ``paths`` (each sample's ``img_path``) and
        ``indices`` (dataset indices), in dataset order.
    """
    loader_cfg = loader_cfg or {}
    loader = Runner.build_dataloader(
        dict(dataset=Subset(dataset, list(indices)),
             sampler=dict(type='DefaultSampler', shuffle=False),
             batch_size=loader_cfg.get('batch_size', 32),
             num_workers=loader_cfg.get('num_workers', 0),
             collate_fn=copy.deepcopy(
                 loader_cfg.get('collate_fn', dict(type='pseudo_collate')))))
    _, take = feature_layer(model.head)
    bar = ProgressBar(len(indices)) if progress else None
    feats, labels, paths = [], [], []
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        x = model.head.pre_logits(model.extract_feat(data['inputs']))
        x = x if take is None else take(x)
        feats.append(x.float().cpu())
        for sample in data['data_samples']:
            labels.append(int(sample.gt_label[0]))
            paths.append(sample.get('img_path', ''))
        if bar is not None:
            bar.update(len(x))
    if bar is not None:
        bar.file.write('\n')
    return dict(features=torch.cat(feats), labels=torch.tensor(labels),
                paths=paths, indices=list(indices))

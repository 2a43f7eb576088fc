"""Semi rows: a semi-supervised training iteration, plain against + ISDA.

Each row builds one semi-supervised method of
``isda_mm.classification.semi`` (the Pi-model, temporal ensembling, Mean
Teacher, VAT) from its model config,
``configs/_base_/models/semi-<method>_convnet13.py`` (ConvNet13, global
average pooling, a 10-way linear classifier), twice, with the same weights:
the plain method (stock ``LinearClsHead``) and the method + ISDA
(``ISDALinearClsHead``, full covariance, lambda0 0.5; Wang et al., T-PAMI
2021, Sec. 5, Table 6). One batch of 100 random 32x32 images, 8 of them
labeled and the rest with label -1, as the semi-supervised data pipeline
gives it (two views per image for the Pi-model and Mean Teacher, one for
the others), stays in memory. Whole iterations of both models are timed
in turn, in a fresh process per method: ``train_step`` (data preprocessor,
every forward and backward the method makes, Adam step), then for Mean
Teacher the teacher's update, which ``SemiSupervisedHook`` makes after each
step in a runner. The ratio is the median over rounds of the two
iterations timed in the same round.

Before timing, the pair is built a first time with lambda0 = 0 and one
iteration of each (on a batch of 20 images, 8 of them labeled), from the
same random state, must give the same loss: the ISDA model is then the
plain method, so the timed pair differs by ISDA alone. The ISDA head's
statistics hold random features and temporal ensembling's ensemble a past
prediction of each image, so that both the check and the timing run
ISDA's full path.

What ISDA adds is confined to the classifier: the statistics update from
the labeled images' features, the supervised bound on them and the
consistency bound on every image (C = 10 classes, A = 128 features, the
covariance of each image's arg-max class). Each method's own extra passes
(the Pi-model's second pass, Mean Teacher's teacher pass and update, VAT's
power iteration and adversarial pass) are in both columns: they are the
method's cost, not ISDA's.
"""
import argparse
import copy
import os
from typing import Dict, List, NamedTuple, Optional

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from .measure import check_close, measure_alternating, paired_ratio, spawn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LAMBDA0 = 0.5
# The loss at lambda0 = 0 against the plain method's: the same arithmetic,
# so it should agree to the last bits. The check runs on CHECK_IMAGES
# images (the batch's labeled count among them): the arithmetic is the same
# at any batch size, and a VAT iteration of 100 images takes seconds.
RTOL = 1e-6
CHECK_IMAGES = 20


class Method(NamedTuple):
    """A semi-supervised method, its model config and the views of each
    image its training batches hold."""
    name: str
    config: str
    views: int


METHODS = (
    Method('Pi-model', 'semi-pi-model_convnet13.py', 2),
    Method('Temporal ensembling', 'semi-temporal-ensembling_convnet13.py',
           1),
    Method('Mean Teacher', 'semi-mean-teacher_convnet13.py', 2),
    Method('VAT', 'semi-vat_convnet13.py', 1),
)


class Batch(NamedTuple):
    """The timed batch: images, labeled among them, image size."""
    images: int = 100
    labeled: int = 8
    size: int = 32


def model_config(method: Method, lambda0: Optional[float]) -> dict:
    """The method's model config: the plain method when ``lambda0`` is
    None, else with the ISDA head (full covariance) at ``lambda0``."""
    cfg = Config.fromfile(
        os.path.join(ROOT, 'configs', '_base_', 'models', method.config))
    model = copy.deepcopy(cfg.model.to_dict())
    if lambda0 is not None:
        if model['head']['type'] != 'LinearClsHead':
            raise ValueError(
                f'{method.config}: model.head.type is '
                f"{model['head']['type']!r}; the benchmark swaps a stock "
                'LinearClsHead for ISDALinearClsHead')
        model['head'].update(type='ISDALinearClsHead', lambda0=lambda0,
                             covariance='full')
    return model


def build_models(method: Method,
                 batch: 'Batch',
                 lambda0: float = LAMBDA0,
                 seed: int = 0,
                 device: str = 'cpu') -> tuple:
    """The plain method and the method + ISDA with the same weights (and
    the same ensemble of past predictions, for temporal ensembling), in
    training mode, on ``device``; the ISDA head's statistics hold random
    features."""
    from mmpretrain.registry import MODELS

    import isda_mm  # noqa: F401  (registers the methods and ConvNet13)
    models = []
    for isda in (None, lambda0):
        torch.manual_seed(seed)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            models.append(MODELS.build(model_config(method, isda)))
    stock, isda = models
    isda.load_state_dict({**isda.state_dict(), **stock.state_dict()})
    warm_statistics(isda.head, seed)
    for model in models:
        model.to(device).train()
        warm_ensemble(model, batch, seed)
    return stock, isda


def warm_ensemble(model: torch.nn.Module, batch: 'Batch',
                  seed: int = 0) -> None:
    """Give temporal ensembling a past prediction of every image of the
    batch, the same in both models: an image seen for the first time has
    no consistency term."""
    if not hasattr(model, 'update_ensemble'):
        return
    gen = torch.Generator().manual_seed(seed)
    probs = torch.rand(batch.images, model.head.num_classes,
                       generator=gen).softmax(1)
    device = model.ensemble.device
    model.update_ensemble(torch.arange(batch.images, device=device),
                          probs.to(device))


def warm_statistics(head: torch.nn.Module, seed: int = 0,
                    per_class: int = 4) -> None:
    """Fill the ISDA head's class statistics with random features, as
    after some training: with empty statistics (zero covariances) ISDA
    would change nothing, and neither the lambda0 = 0 check nor the
    timing would see it."""
    estimator = head.isda.estimator
    gen = torch.Generator().manual_seed(seed)
    classes = head.num_classes
    labels = torch.arange(classes).repeat(per_class)
    features = torch.randn(len(labels), head.in_channels, generator=gen)
    estimator.update(features + labels[:, None].float(), labels)


def make_batch(batch: Batch, seed: int = 0, views: int = 2) -> dict:
    """Random uint8 images, as ``PackInputs`` gives them (for two views,
    after ``MultiView``), image ``i`` with ``sample_idx`` ``i``: the first
    ``batch.labeled`` labeled, the others with label -1, as
    ``SemiSupervisedDataset`` withholds it."""
    from mmpretrain.structures import DataSample
    gen = torch.Generator().manual_seed(seed)
    shape = (3, batch.size, batch.size)
    inputs = [[
        torch.randint(256, shape, generator=gen, dtype=torch.uint8)
        for _ in range(batch.images)
    ] for _ in range(views)]
    if views == 1:
        inputs = inputs[0]
    labels = torch.randint(10, (batch.images, ), generator=gen)
    samples = [
        DataSample(metainfo=dict(sample_idx=i)).set_gt_label(
            int(y) if i < batch.labeled else -1)
        for i, y in enumerate(labels)
    ]
    return dict(inputs=inputs, data_samples=samples)


def _optim_wrapper(model: torch.nn.Module, lr: float) -> OptimWrapper:
    """Adam, the methods' optimizer (their ConvNet schedules)."""
    return OptimWrapper(torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=lr))


def iteration(model: torch.nn.Module, data: dict,
              optim_wrapper: OptimWrapper) -> dict:
    """One training iteration as a runner makes it: ``train_step``, then
    the teacher's update where the method has a teacher (Mean Teacher;
    ``SemiSupervisedHook`` makes it after each optimizer step)."""
    log_vars = model.train_step(data, optim_wrapper)
    if hasattr(model, 'update_teacher'):
        model.update_teacher()
    return log_vars


def check_lambda0_zero(method: Method,
                       batch: Batch,
                       seed: int = 0,
                       device: str = 'cpu',
                       rtol: float = RTOL) -> Dict[str, float]:
    """At lambda0 = 0 the ISDA model's loss must be the plain method's.

    One iteration of each model, with learning rate 0 and from the same
    random state (dropout, input noise).

    Raises:
        BenchmarkError: If the two losses differ beyond ``rtol``.
    """
    batch = batch._replace(images=min(batch.images, CHECK_IMAGES))
    data = make_batch(batch, seed, method.views)
    losses = {}
    for name, model in zip(('baseline', 'isda'),
                           build_models(method, batch, 0.0, seed, device)):
        torch.manual_seed(seed + 1)
        log_vars = iteration(model, data, _optim_wrapper(model, 0.0))
        losses[name] = log_vars['loss'].detach().double().cpu()
    error = (losses['isda'] - losses['baseline']).abs().item() / max(
        losses['baseline'].abs().item(), 1e-30)
    errors = dict(loss=error)
    check_close(f'{method.name} (lambda0 = 0)', errors, rtol)
    return dict(errors, loss_value=losses['baseline'].item())


def build_steps(method: Method,
                batch: Batch = Batch(),
                seed: int = 0,
                device: str = 'cpu') -> dict:
    """A training iteration of the plain method and of the method + ISDA
    (lambda0 0.5), on one batch kept in memory."""
    data = make_batch(batch, seed, method.views)
    steps = {}
    for name, model in zip(('baseline', 'isda'),
                           build_models(method, batch, LAMBDA0, seed,
                                        device)):
        wrapper = _optim_wrapper(model, 1e-4)
        steps[name] = (lambda m, o: lambda: iteration(m, data, o))(model,
                                                                  wrapper)
    return steps


def worker(spec: dict) -> dict:
    """One method, in this process: the lambda0 = 0 check, then the
    timing."""
    method = METHODS[spec['method']]
    batch = Batch(**spec.get('batch', {}))
    check = check_lambda0_zero(method, batch, device=spec['device'])
    steps = build_steps(method, batch, device=spec['device'])
    # Iterations of 2-6 s on a 2-core CPU: three rounds after the warm-up
    # (more for the faster methods) keep the table near 3 minutes.
    result = measure_alternating(steps, spec['device'], spec['repeats'],
                                 budget_s=15.0, min_repeats=3)
    return dict(result, check=check)


def run(args: argparse.Namespace) -> List[dict]:
    """Every method, each in a fresh process."""
    out = []
    for i, method in enumerate(METHODS):
        result = spawn(dict(mode='semi', method=i, device=args.device,
                            repeats=args.repeats), args.threads)
        result['method'] = method.name
        out.append(result)
        print(f'[{i + 1}/{len(METHODS)}] {method.name}: baseline '
              f'{result["baseline"]["ms"]:.0f} ms, ISDA '
              f'{result["isda"]["ms"]:.0f} ms (median of '
              f'{result["isda"]["repeats"]}), ISDA / baseline '
              f'{paired_ratio(result, "isda", "baseline"):.3f}', flush=True)
    return out


def format_table(results: List[dict]) -> str:
    """Markdown: median iteration times and the paired ratio."""
    lines = ['| method | baseline ms / iter | ISDA ms / iter | '
             'ISDA / baseline | rounds | lambda0 = 0 check (rel. error) |',
             '|---|---|---|---|---|---|']
    for r in results:
        b, i = r['baseline'], r['isda']
        lines.append(
            f'| {r["method"]} | {b["ms"]:.0f} | {i["ms"]:.0f} | '
            f'{paired_ratio(r, "isda", "baseline"):.3f} | {b["repeats"]} | '
            f'{r["check"]["loss"]:.1e} |')
    lines += ['', "Both columns hold each method's own passes (the "
              "Pi-model's second pass, Mean Teacher's teacher, VAT's power "
              "iteration and adversarial pass): they are the method's "
              "cost, not ISDA's."]
    return '\n'.join(lines)

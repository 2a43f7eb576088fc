"""The ISDA strength schedule: lambda = lambda0 * t / T (T-PAMI 2021, Sec. 4).

``t / T`` comes from the mmengine runner through the ``MessageHub``, which
the default ``RuntimeInfoHook`` keeps up to date: no extra hook is needed.
"""
from typing import Optional

from mmengine.logging import MessageHub

PROGRESS_UNITS = ('iter', 'epoch')


def training_progress(by: str = 'iter') -> Optional[float]:
    """Fraction of training done, in ``[0, 1]``, or None outside a runner.

    Args:
        by (str): ``'iter'`` (``iter / max_iters``) or ``'epoch'``
            (``epoch / max_epochs``, as the paper's epoch-based scripts).
            During a training step both count what is finished, so the
            first step sees 0.

    Returns:
        float or None: None when no runner has published its progress.
    """
    if by not in PROGRESS_UNITS:
        raise ValueError(f'by must be one of {PROGRESS_UNITS}, got {by!r}')
    hub = MessageHub.get_current_instance()
    done, total = hub.get_info(by), hub.get_info(f'max_{by}s')
    if done is None or not total:
        return None
    return min(done / total, 1.0)


def isda_lambda(lambda0: float, by: str = 'iter') -> float:
    """lambda for the current step: ``lambda0 * progress``.

    Outside a runner (a bare forward in a notebook or a test) there is no
    progress to read, and the full ``lambda0`` is used.
    """
    progress = training_progress(by)
    return lambda0 if progress is None else lambda0 * progress

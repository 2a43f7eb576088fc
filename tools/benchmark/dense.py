"""The dense algorithm of the released ISDA implementation, for comparison.

Written here from its description (not its code): N x C x A one-hot tensors
and a C N A^2 product in the statistics update, N x A x A gathered
covariances and an N x C x C product of which only the diagonal is kept in
the augmentation. It computes the same numbers as :mod:`isda_mm.core`; the
benchmark checks that before it times either.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def dense_batch_statistics(features: Tensor, labels: Tensor,
                           num_classes: int, full: bool):
    """Per-class count, mean and biased covariance by one-hot tensors.

    Every class gets a slot in an ``(N, C, A)`` tensor whether or not it is
    present, and the full covariance is one ``bmm`` over all classes: the
    work is ``C N A^2`` (full) or ``C N A`` (diagonal).

    Args:
        features (Tensor): ``(N, A)`` features.
        labels (Tensor): ``(N,)`` labels in ``[0, C)``.
        num_classes (int): C.
        full (bool): Full ``(C, A, A)`` covariances, else ``(C, A)``
            variances.

    Returns:
        tuple[Tensor, Tensor, Tensor]: count ``(C,)`` (float), mean
        ``(C, A)`` and covariance of the batch; zeros for absent classes.
    """
    n, a = features.shape
    c = num_classes
    onehot = F.one_hot(labels, c).to(features.dtype)  # (N, C)
    mask = onehot[:, :, None].expand(n, c, a)  # (N, C, A)
    by_class = features[:, None, :].expand(n, c, a) * mask
    amount = mask.sum(0).clamp(min=1)  # (C, A)
    mean = by_class.sum(0) / amount
    centred = by_class - mean[None] * mask  # (N, C, A)
    if full:
        cov = torch.bmm(centred.permute(1, 2, 0), centred.permute(
            1, 0, 2)) / amount[:, :, None]
    else:
        cov = centred.square().sum(0) / amount
    return onehot.sum(0), mean, cov


def dense_augment(logits: Tensor, labels: Tensor, weight: Tensor,
                  covariance: Tensor, ratio: float) -> Tensor:
    """Augmented logits computed sample by sample, as the released code.

    ``D = W - w_y`` is built for every sample, ``(N, C, A)``. Full:
    ``sigma2 = diag(D S_y D^T)`` with ``S_y`` gathered per sample
    ``(N, A, A)`` and the ``(N, C, C)`` product formed in full. Diagonal:
    ``sigma2 = sum_a D^2 s_y``.

    Args:
        logits (Tensor): ``(N, C)``.
        labels (Tensor): ``(N,)``.
        weight (Tensor): ``(C, A)`` classifier weight.
        covariance (Tensor): ``(C, A, A)`` or ``(C, A)``, a constant.
        ratio (float): lambda.

    Returns:
        Tensor: ``logits + 0.5 * ratio * sigma2``.
    """
    n, c = logits.shape
    a = weight.shape[1]
    w_all = weight[None].expand(n, c, a)
    w_y = torch.gather(w_all, 1, labels[:, None, None].expand(n, c, a))
    diff = w_all - w_y  # (N, C, A)
    cov_y = covariance.detach()[labels]  # (N, A, A) or (N, A)
    if covariance.dim() == 3:
        sigma2 = torch.bmm(torch.bmm(diff, cov_y), diff.transpose(1, 2))
        sigma2 = torch.diagonal(sigma2, dim1=1, dim2=2)
    else:
        sigma2 = (diff.square() * cov_y[:, None, :]).sum(2)
    return logits + 0.5 * ratio * sigma2


class DenseISDA:
    """Running class statistics and ISDA loss of the dense algorithm.

    The statistics are plain tensors; the count is float, as the released
    code kept it. For ``m`` batch samples of a class seen ``n`` times,
    ``w = m / (n + m)`` (0 for classes absent from the batch)::

        mean <- (1 - w) mean + w mean_b
        cov  <- (1 - w) cov + w cov_b + w (1 - w) (mean - mean_b)(...)^T

    Args:
        num_classes (int): C.
        feature_dim (int): A.
        covariance (str): ``'full'`` or ``'diagonal'``. Defaults to
            ``'full'``.
        device (torch.device | str, optional): Where the statistics live.
    """

    def __init__(self,
                 num_classes: int,
                 feature_dim: int,
                 covariance: str = 'full',
                 device=None) -> None:
        if covariance not in ('full', 'diagonal'):
            raise ValueError(f'covariance must be full or diagonal, '
                             f'got {covariance!r}')
        self.num_classes = num_classes
        self.full = covariance == 'full'
        shape = (num_classes, feature_dim) + (
            (feature_dim, ) if self.full else ())
        self.mean = torch.zeros(num_classes, feature_dim, device=device)
        self.covariance = torch.zeros(shape, device=device)
        self.count = torch.zeros(num_classes, device=device)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        """Merge one batch into the statistics of all C classes.

        Args:
            features (Tensor): ``(N, A)`` features (detached here).
            labels (Tensor): ``(N,)`` labels in ``[0, C)``.
        """
        features = features.detach().to(self.mean.dtype)
        m, mean_b, cov_b = dense_batch_statistics(features, labels,
                                                  self.num_classes, self.full)
        w = m / (self.count + m).clamp(min=1)  # (C,)
        d = self.mean - mean_b
        if self.full:
            w_cov = w[:, None, None]
            spread = torch.bmm(d[:, :, None], d[:, None, :])
        else:
            w_cov = w[:, None]
            spread = d.square()
        self.covariance = (self.covariance * (1 - w_cov) + cov_b * w_cov +
                           w_cov * (1 - w_cov) * spread)
        self.mean = self.mean * (1 - w[:, None]) + mean_b * w[:, None]
        self.count = self.count + m

    def augment(self, logits: Tensor, labels: Tensor, weight: Tensor,
                ratio: float) -> Tensor:
        """Augmented logits with the current statistics."""
        return dense_augment(logits, labels, weight, self.covariance, ratio)

    def loss(self, features: Tensor, logits: Tensor, labels: Tensor,
             weight: Tensor, ratio: float) -> Tensor:
        """Update with the batch, then mean cross-entropy of the augmented
        logits (the order of :meth:`isda_mm.core.ISDALoss.forward`).

        Args:
            features (Tensor): ``(N, A)`` inputs of the classifier.
            logits (Tensor): ``(N, C)`` its outputs.
            labels (Tensor): ``(N,)``.
            weight (Tensor): ``(C, A)`` its weight.
            ratio (float): lambda.

        Returns:
            Tensor: The scalar loss.
        """
        self.update(features, labels)
        return F.cross_entropy(
            self.augment(logits, labels, weight, ratio), labels)

"""Independent float64 references written from the formulas, with loops.

Deliberately slow and plain: they share no code with ``isda_mm``.
"""
import torch


def reference_statistics(batches, num_classes, ignore_index=None,
                         full=True):
    """Population mean, covariance and count of every feature seen.

    Args:
        batches: iterable of ``(features (N, A), labels (N,))``.

    Returns:
        tuple: mean (C, A), covariance (C, A, A) or (C, A), count (C,), all
        float64 except the int64 count.
    """
    seen = [[] for _ in range(num_classes)]
    dim = None
    for features, labels in batches:
        dim = features.shape[1]
        for x, y in zip(features.double(), labels.tolist()):
            if y != ignore_index:
                seen[y].append(x)
    mean = torch.zeros(num_classes, dim, dtype=torch.float64)
    cov = torch.zeros(num_classes, dim, dim, dtype=torch.float64)
    count = torch.zeros(num_classes, dtype=torch.int64)
    for c, xs in enumerate(seen):
        count[c] = len(xs)
        if not xs:
            continue
        mu = sum(xs) / len(xs)
        mean[c] = mu
        for a in range(dim):
            for b in range(dim):
                cov[c, a, b] = sum(
                    (x[a] - mu[a]) * (x[b] - mu[b]) for x in xs) / len(xs)
    if not full:
        cov = torch.diagonal(cov, dim1=1, dim2=2).clone()
    return mean, cov, count


def reference_augment(logits, labels, weight, covariance, ratio,
                      ignore_index=None):
    """``z_ij + ratio / 2 * (w_j - w_y)^T S_y (w_j - w_y)`` sample by sample.

    Built from differentiable torch scalars, so autograd of this function is
    the reference gradient.
    """
    rows = []
    for i in range(logits.shape[0]):
        y = int(labels[i])
        row = []
        for j in range(logits.shape[1]):
            if y == ignore_index:
                row.append(logits[i, j])
                continue
            d = weight[j] - weight[y]
            if covariance.dim() == 3:
                s = d @ covariance[y] @ d
            else:
                s = (d * covariance[y] * d).sum()
            row.append(logits[i, j] + 0.5 * ratio * s)
        rows.append(torch.stack(row))
    return torch.stack(rows)

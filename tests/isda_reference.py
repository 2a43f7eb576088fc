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


def reference_soft_augment(logits, targets, weight, covariance, ratio,
                           mixture=None):
    """The soft-target bound (DESIGN.md §7) sample by sample.

    ``z + ratio / 2 * q`` with ``q_j = (w_j - w̄)^T S (w_j - w̄)``,
    ``w̄ = sum_k r_k w_k`` for ``r = t / sum(t)``, ``S = sum_k m_k S_k``, and
    the extra term ``ratio / 2 * sum_j t_j q_j``. A row of zero targets is
    returned unchanged, with no extra term.
    """
    rows, extras = [], []
    for i in range(logits.shape[0]):
        t = targets[i].double()
        if t.sum() == 0:  # nothing scored: not augmented
            rows.append(logits[i] * 1)
            extras.append(logits[i].sum() * 0)
            continue
        r = t / t.sum()
        if mixture is None:
            m = r
        elif mixture.dim() == 1:
            m = torch.zeros_like(t)
            m[int(mixture[i])] = 1.0
        else:  # a row of zeros: no translation
            m = mixture[i].double()
            m = m / m.sum() if m.sum() > 0 else m
        w_bar = sum(r[k] * weight[k] for k in range(weight.shape[0]))
        row, extra = [], 0.0
        for j in range(logits.shape[1]):
            d = weight[j] - w_bar
            q = 0.0
            for k in range(weight.shape[0]):
                if m[k] == 0:
                    continue
                if covariance.dim() == 3:
                    q = q + m[k] * (d @ covariance[k] @ d)
                else:
                    q = q + m[k] * (d * covariance[k] * d).sum()
            row.append(logits[i, j] + 0.5 * ratio * q)
            extra = extra + 0.5 * ratio * t[j] * q
        rows.append(torch.stack(row))
        extras.append(extra)
    return torch.stack(rows), torch.stack(extras)


def reference_weighted_statistics(batches, num_classes, full=True):
    """Weighted population mean, covariance and weight sum per class.

    Args:
        batches: iterable of ``(features (N, A), class weights (N, C))``.
    """
    seen = [[] for _ in range(num_classes)]
    for features, weights in batches:
        for x, p in zip(features.double(), weights.double()):
            for c in range(num_classes):
                if p[c] > 0:
                    seen[c].append((float(p[c]), x))
    dim = features.shape[1]
    mean = torch.zeros(num_classes, dim, dtype=torch.float64)
    cov = torch.zeros(num_classes, dim, dim, dtype=torch.float64)
    total = torch.zeros(num_classes, dtype=torch.float64)
    for c, pairs in enumerate(seen):
        if not pairs:
            continue
        total[c] = sum(p for p, _ in pairs)
        mean[c] = sum(p * x for p, x in pairs) / total[c]
        for p, x in pairs:
            d = x - mean[c]
            cov[c] += p * torch.outer(d, d) / total[c]
    if not full:
        cov = torch.diagonal(cov, dim1=1, dim2=2).clone()
    return mean, cov, total

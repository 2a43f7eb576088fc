"""Pictures of ISDA's semantic directions (matplotlib's Agg canvas).

Wang et al., "Regularizing Deep Networks with Semantic Data Augmentation"
(T-PAMI 2021) visualise translated features by inverting them into images
with a generative model trained for that. These pictures need none:
they show the *real* images spread along a direction, and the real images
nearest to a translated feature. Each row of images is one montage in one
axes, which keeps drawing cheap. Figures are made without ``pyplot``, so
importing this module changes no global backend.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

GRAY_MODES = ('1', 'L', 'I', 'I;16', 'F')
MAX_SIDE = 128  # pixels of a montage cell's height
GAP = 0.08  # blank between cells, as a fraction of the cell height


def _figure(size: Tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas (no pyplot state to close)."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def load_image(path: str, height: Optional[int] = None) -> np.ndarray:
    """An image file as a uint8 RGB array, optionally resized (nearest) to
    ``height`` rows with its aspect ratio."""
    from PIL import Image
    with Image.open(path) as image:
        if image.mode in GRAY_MODES:  # 16-bit and float gray: via 8-bit
            image = image.convert('L')
        image = image.convert('RGB')
        if height is not None and image.height != height:
            width = max(1, round(image.width * height / image.height))
            image = image.resize((width, height), Image.NEAREST)
        return np.asarray(image)


def montage(paths: Sequence[str],
            height: Optional[int] = None) -> Tuple[np.ndarray, List[float]]:
    """Images side by side on white, and the x centre of each.

    Args:
        paths (Sequence[str]): Image files.
        height (int, optional): Row height in pixels. Defaults to None: the
            first image's, at most ``MAX_SIDE``.

    Returns:
        tuple: ``(H, W, 3)`` uint8 montage and the cells' centres.
    """
    if height is None:
        height = min(load_image(paths[0]).shape[0], MAX_SIDE)
    images = [load_image(p, height) for p in paths]
    gap = max(1, round(GAP * height))
    width = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    centres, x = [], 0
    for im in images:
        canvas[:, x:x + im.shape[1]] = im
        centres.append(x + im.shape[1] / 2 - 0.5)
        x += im.shape[1] + gap
    return canvas, centres


def _rows_figure(rows: Sequence[Sequence[str]], title: str,
                 label_width: float = 1.3):
    """A figure of one montage axes per row; returns it, its axes and the
    cell centres of each row."""
    height = min(load_image(rows[0][0]).shape[0], MAX_SIDE)
    images = [montage(row, height) for row in rows]
    cols = max(len(row) for row in rows)
    cell = 1.1  # inches per image
    top, bottom = 0.75, 0.05
    row_h = cell + 0.3
    fig_w = label_width + cell * cols + 0.2
    fig_h = top + bottom + row_h * len(rows)
    fig = _figure((fig_w, fig_h))
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / fig_h)
    axes = []
    for i, (image, _) in enumerate(images):
        width = cell * image.shape[1] / (image.shape[0] * (1 + GAP))
        ax = fig.add_axes([
            label_width / fig_w, 1 - (top + row_h * (i + 1) - 0.3) / fig_h,
            min(width, fig_w - label_width - 0.1) / fig_w, cell / fig_h
        ])
        ax.imshow(image, interpolation='nearest')
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        axes.append(ax)
    return fig, axes, [centres for _, centres in images]


def directions_grid(paths: Sequence[Sequence[str]],
                    offsets: Sequence[Sequence[float]],
                    shares: Sequence[float], title: str, out: str,
                    dpi: int = 80) -> None:
    """One row per direction: images from most negative to most positive
    projection.

    Args:
        paths (Sequence[Sequence[str]]): Image paths, one list per row.
        offsets (Sequence[Sequence[float]]): Each image's projection in
            standard deviations along the row's direction.
        shares (Sequence[float]): Each direction's share of the variance.
        title (str): Figure title.
        out (str): PNG path.
        dpi (int): Resolution. Defaults to 80.
    """
    fig, axes, centres = _rows_figure(paths, title)
    for i, (ax, offs, xs) in enumerate(zip(axes, offsets, centres)):
        ax.set_xticks(xs, [f'{o:+.1f}σ' for o in offs], fontsize=8)
        ax.tick_params(length=0)
        ax.set_ylabel(f'direction {i + 1}\n{100 * shares[i]:.1f}% of '
                      'variance', fontsize=9, rotation=0, ha='right',
                      va='center')
    axes[0].set_title('most negative  →  most positive projection',
                      fontsize=8)
    fig.savefig(out, dpi=dpi)


def neighbours_grid(paths: Sequence[Sequence[str]],
                    names: Sequence[Sequence[str]], query_name: str,
                    steps: Sequence[float], title: str, out: str,
                    dpi: int = 80) -> None:
    """One row per query: the real images nearest to ``a + t sigma v``.

    Args:
        paths (Sequence[Sequence[str]]): Image paths, one list per query,
            one image per step.
        names (Sequence[Sequence[str]]): Class names of those images; one
            other than ``query_name`` is labelled in red.
        query_name (str): The queries' class name.
        steps (Sequence[float]): The values of ``t``.
        title (str): Figure title.
        out (str): PNG path.
        dpi (int): Resolution. Defaults to 80.
    """
    fig, axes, centres = _rows_figure(paths, title, label_width=0.9)
    for i, (ax, row_names, xs) in enumerate(zip(axes, names, centres)):
        labels = []
        for t, name in zip(steps, row_names):
            text = 'query' if t == 0 else f't = {t:+g}'
            labels.append(text + (f'\nclass {name}'
                                  if name != query_name else ''))
        ax.set_xticks(xs, labels, fontsize=8)
        ax.tick_params(length=0)
        for tick, name in zip(ax.get_xticklabels(), row_names):
            tick.set_color('tab:red' if name != query_name else 'black')
        ax.set_ylabel(f'query {i + 1}', fontsize=9, rotation=0,
                      ha='right', va='center')
    fig.savefig(out, dpi=dpi)


def spectrum_plot(curves: Sequence[Sequence[float]],
                  names: Sequence[str], out: str,
                  compare: Optional[Sequence[Sequence[float]]] = None,
                  labels: Sequence[str] = ('model', 'compared'),
                  title: str = 'Explained variance of each class covariance',
                  dpi: int = 80) -> None:
    """Cumulative explained variance against number of directions.

    Args:
        curves (Sequence[Sequence[float]]): One cumulative-share curve per
            class (solid).
        names (Sequence[str]): Class names.
        out (str): PNG path.
        compare (Sequence[Sequence[float]], optional): The compared
            model's curves, same classes (dashed). Defaults to None.
        labels (Sequence[str]): Names of the two models.
            Defaults to ``('model', 'compared')``.
        title (str): Figure title.
        dpi (int): Resolution. Defaults to 80.
    """
    fig = _figure((7, 4.5))
    ax = fig.subplots()
    colours = colormaps['tab10' if len(names) <= 10 else 'tab20']
    dim = len(curves[0])
    x = np.arange(1, dim + 1)
    handles = []
    for i, (curve, name) in enumerate(zip(curves, names)):
        colour = colours(i % colours.N)
        ax.plot(x, curve, color=colour, lw=1.5)
        if compare is not None:
            ax.plot(x, compare[i], color=colour, lw=1.5, ls='--')
        handles.append(Line2D([], [], color=colour, label=f'class {name}'))
    if compare is not None:
        handles += [Line2D([], [], color='gray', label=labels[0]),
                    Line2D([], [], color='gray', ls='--', label=labels[1])]
    ax.set_xscale('log')
    ax.set(xlabel='number of directions (eigenvectors, by eigenvalue)',
           ylabel="share of the class's total variance", ylim=(0, 1.02),
           xlim=(1, dim), title=title)
    ax.grid(alpha=0.3, which='both')
    ax.legend(handles=handles, fontsize=8, loc='lower right',
              ncol=2 if len(handles) > 8 else 1)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)

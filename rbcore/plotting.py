"""Figures of the study: one function per figure, each taking data and returning a Figure.

Notebooks save figures with `save_figure`, as PDF (papers) and PNG (talks, README), named
after the notebook that made them (`04_roc`). Cutout triplets are shown as the talk shows
them: Ref | New | Sub columns, zscale, origin lower, the score in the title.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # headless runs (papermill, CI): non-interactive backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.visualization import ZScaleInterval  # noqa: E402

CHANNEL_NAMES = ("Ref", "New", "Sub")


def use_headless_backend() -> None:
    """Switch matplotlib to the non-interactive Agg backend."""
    plt.switch_backend("Agg")


def save_figure(fig: plt.Figure, figures_dir, name: str, *, dpi: int = 150) -> list[Path]:
    """Save `fig` as `figures_dir/name.pdf` and `figures_dir/name.png`.

    Returns:
        The two paths written.
    """
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.pdf", out / f"{name}.png"]
    for p in paths:
        fig.savefig(p, dpi=dpi, bbox_inches="tight")
    return paths


def _zscale(img: np.ndarray) -> tuple[float, float]:
    finite = img[np.isfinite(img)]
    if finite.size == 0 or finite.min() == finite.max():
        return 0.0, 1.0
    return ZScaleInterval().get_limits(finite)


def triplet_gallery(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    ncols_triplets: int = 1,
    panel_size: float = 1.3,
    suptitle: str | None = None,
) -> plt.Figure:
    """Cutout triplets as rows of Ref | New | Sub panels (zscale, origin lower).

    Args:
        images: float[N, H, W, 3] raw or normalized cutouts; NaN (masked) pixels are shown
            in the colormap's "bad" colour (red).
        titles: one string per triplet (e.g. "prediction: -2.19"), shown above its New panel.
        ncols_triplets: triplets side by side per figure row.
        panel_size: inches per panel.
        suptitle: figure title.

    Returns:
        The Figure.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"triplet_gallery expects images of shape [N, H, W, 3], got {images.shape}"
        )
    n = images.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} triplets")
    nrows = max(1, int(np.ceil(n / ncols_triplets)))
    ncols = 3 * ncols_triplets
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * panel_size, nrows * panel_size * 1.12), squeeze=False
    )
    cmap = plt.get_cmap("gray").with_extremes(bad="red")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for i in range(n):
        r, c0 = divmod(i, ncols_triplets)
        for ch in range(3):
            ax = axes[r, 3 * c0 + ch]
            ax.set_frame_on(True)
            img = images[i, :, :, ch]
            vmin, vmax = _zscale(img)
            ax.imshow(np.ma.masked_invalid(img), origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
            if r == 0:
                ax.set_xlabel(CHANNEL_NAMES[ch], fontsize=8)
                ax.xaxis.set_label_position("top")
            if ch == 1 and titles is not None:
                ax.set_title(titles[i], fontsize=7, pad=10 if r == 0 else 2)
    if n == 0:
        axes[0, 0].text(
            0.5, 0.5, "no samples", ha="center", va="center", transform=axes[0, 0].transAxes
        )
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig

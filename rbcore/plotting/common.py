"""What every figure module shares: the headless backend, saving, the zscale of a cutout.

Notebooks save figures with `save_figure`, as PDF (papers) and PNG (talks, README), named
after the notebook that made them (`04_roc`).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # headless runs (papermill, CI): non-interactive backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.visualization import ZScaleInterval  # noqa: E402

__all__ = ["use_headless_backend", "save_figure", "zscale"]


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
    # No creation date and no matplotlib version: a rerun that draws the same figure writes
    # the same bytes, whatever matplotlib release installed it.
    pdf_meta = {"CreationDate": None, "Producer": None, "Creator": None}
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight", metadata=pdf_meta)
    fig.savefig(paths[1], dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return paths


def zscale(img: np.ndarray) -> tuple[float, float]:
    """(vmin, vmax) of a cutout by zscale over its finite pixels; (0, 1) if empty or flat."""
    finite = img[np.isfinite(img)]
    if finite.size == 0 or finite.min() == finite.max():
        return 0.0, 1.0
    return ZScaleInterval().get_limits(finite)

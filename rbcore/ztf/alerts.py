"""Real ZTF alert triplets on the Tomo-e cutout grid: loading, resampling, agreement with drb.

The models are trained on the simulated Tomo-e Gozen survey (29x29 cutouts at 1.19"/px).
ZTF alert packets carry 63x63 stamps at 1.01"/px, centred on the candidate. A Tomo-e
cutout spans 29 x 1.19" = 34.51", i.e. 34.51 / 1.01 = 34.17 ZTF pixels, so each stamp is
cut to that footprint around its centre and resampled onto a 29x29 grid.

Resampling is flux-conserving (area-weighted rebinning, a drizzle with pixfrac = 1): each
output pixel is the sum of the input pixels weighted by the area they share with it. A
detector pixel integrates the light that falls on it, so this is what a coarser pixel grid
would have recorded (up to the input's own 1.01" pixelisation), the total flux in the
footprint is kept, and noise is not aliased as a point-sampling (bilinear) interpolation
would do when shrinking by 1.18x. The separable weights make it two small matrix products
per channel. Values are in input counts per output pixel (x 1.39 per pixel); the model's
per-cutout min-max normalisation (`rbcore.preprocess.normalize`) removes that scale.

NaN rule (ZTF masks ~1.4 % of pixels; stamps cut at a chip edge are NaN-padded): for each
output pixel the masked fraction of its footprint is computed. If more than half of the
footprint is masked (fraction > 0.5, "dominated by masked input") the output is NaN;
otherwise the finite part is rescaled to the full footprint (flux / finite area x area),
so a small mask neither darkens the pixel nor spreads NaN over the cutout.

Sentinels: one stamp of the developer set marks chip-edge pixels of its template with
-3.4e38 (float32's lowest value, a FITS-style blank) where the science and difference
stamps hold NaN. Values with |x| >= 1e30 (six orders of magnitude beyond any ZTF pixel)
are taken as masked and turned into NaN before resampling; the count is reported in
`AlertSet.n_sentinel_masked`. +-inf is an error.

The alerts are data from other repositories and never ship with rbcore: by default they are
read from the developer set beside the checkout (`../shared/data/ztf_alerts/
ztf_alerts_dev.npz`); `data/README.md` tells how to make the same file from ZTF alert packets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.files import write_json_atomic
from rbcore.inference import predict_logits, sigmoid
from rbcore.model import CUTOUT_SIZE

# Tomo-e Gozen pixel scale, 1.19"/px (Sako et al. 2018, SPIE 10702; Takahashi et al. 2022).
TOMOE_PIXEL_SCALE = 1.19
# ZTF pixel scale, 1.01"/px (Bellm et al. 2019, PASP 131, 018002; shared data README).
ZTF_PIXEL_SCALE = 1.01
# An output pixel is NaN when more than this fraction of its footprint is masked (see above).
MAX_MASKED_FRACTION = 0.5
# |x| at or above this is a blank/sentinel value, not a pixel (ZTF stamps peak at ~6e4).
SENTINEL_ABS = 1e30
# braai's decision threshold: drb >= 0.5 is "real" (Duev et al. 2019, MNRAS 489, 3582).
DRB_THRESHOLD = 0.5

REQUIRED_ARRAYS = ("images", "ids", "drb", "weak_labels")
# The ZTF developer set beside the checkout (never committed: data from other repositories).
REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout (rbcore/ztf/alerts.py)
DEFAULT_ALERTS = REPO_ROOT.parent / "shared" / "data" / "ztf_alerts"
DEFAULT_ALERTS_FILE = "ztf_alerts_dev.npz"


@dataclass
class AlertSet:
    """ZTF alerts on the Tomo-e grid.

    Attributes:
        images: float32[N, 29, 29, 3] (ref, new, sub), raw resampled values, NaN = masked.
        meta: one row per alert: at least `ids`, `drb` (float, NaN if absent) and
            `weak_labels` (1 = matched to a known solar-system object, else -1).
        path: the file read.
        resampled_on_load: True when the file held ZTF-scale stamps resampled here.
        n_sentinel_masked: input pixels turned from a blank sentinel into NaN.
    """

    images: np.ndarray
    meta: pd.DataFrame
    path: Path
    resampled_on_load: bool
    n_sentinel_masked: int

    def __len__(self) -> int:
        return len(self.images)


def profile_settings(profile: str) -> dict:
    """Notebook 06's work per profile (`rbcore.profiles`, step "real_alerts")."""
    from rbcore.profiles import settings

    return settings(profile, "real_alerts")


def default_alerts_path() -> Path:
    """`../shared/data/ztf_alerts/ztf_alerts_dev.npz` beside this checkout."""
    return DEFAULT_ALERTS / DEFAULT_ALERTS_FILE


def missing_alerts_message(path) -> str:
    """One line saying that no alert file is at `path` and where to get one."""
    return (
        f"No ZTF alert file at {path}: nothing to score. Make one from ZTF alert packets "
        "(see data/README.md) and pass it as alerts_path."
    )


def resolve_alerts_path(alerts_path: str | os.PathLike = "") -> Path:
    """The alert file a notebook parameter names, whatever the working directory.

    Args:
        alerts_path: "" -> `default_alerts_path()`; an absolute path as is; a relative path
            from the working directory if it exists there, else from the repository root
            (papermill may run in notebooks/ or in the root).

    Returns:
        An absolute path (existence is checked by `load_alerts`).
    """
    if str(alerts_path) == "":
        return default_alerts_path()
    path = Path(alerts_path).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    return (REPO_ROOT / path).resolve()


def prepare_alerts_run(alerts_path, results_path) -> tuple[Path, bool]:
    """Notebook 06's start: (the alert file, whether there is one to score).

    The previous run's `results_path` is removed first, so that no stale result survives a
    run that scores nothing or fails. The default file (`alerts_path` "") may be absent (the
    notebook then says where to get one and ends); an explicit `alerts_path` must be a file.

    Raises:
        FileNotFoundError: an explicit `alerts_path` that does not exist or is a folder.
    """
    Path(results_path).unlink(missing_ok=True)
    path = resolve_alerts_path(alerts_path)
    if str(alerts_path) != "" and not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"alerts_path {path} {what}; expected an alert file (.npz) such as "
            "`python -m rbcore.ztf.packets` writes from a folder of packets"
        )
    return path, path.is_file()


def overlap_weights(n_in: int, n_out: int = CUTOUT_SIZE, ratio: float | None = None) -> np.ndarray:
    """1-D area-overlap weights from a centred input axis to a coarser output axis.

    Args:
        n_in: input pixels along the axis (63 for a ZTF stamp).
        n_out: output pixels (29 for a Tomo-e cutout).
        ratio: output pixel size in input pixels; default 1.19 / 1.01.

    Returns:
        float64[n_out, n_in]: w[j, i] = length of input pixel i inside output pixel j, in
        input pixels; each row sums to `ratio`. Output pixel n_out // 2 is centred on the
        input centre (n_in - 1) / 2.
    """
    ratio = TOMOE_PIXEL_SCALE / ZTF_PIXEL_SCALE if ratio is None else float(ratio)
    half = n_out * ratio / 2.0
    centre = (n_in - 1) / 2.0
    if centre + 0.5 < half - 1e-9:
        raise ValueError(
            f"stamp of {n_in} pixels is too small for {n_out} output pixels of {ratio:.4f} "
            f"input pixels (needs at least {2 * half:.2f})"
        )
    edges = centre - half + ratio * np.arange(n_out + 1)
    lo = np.arange(n_in) - 0.5
    w = np.minimum(edges[1:, None], lo[None] + 1.0) - np.maximum(edges[:-1, None], lo[None])
    return np.clip(w, 0.0, None)


def resample_to_tomoe(images: np.ndarray, *, ratio: float | None = None) -> np.ndarray:
    """Cut and resample centred stamps to the 29x29 Tomo-e grid (flux-conserving, NaN rule).

    Args:
        images: float[N, H, W, C] centred stamps; NaN = masked. H, W >= 35 for ZTF.
        ratio: output pixel size in input pixels; default 1.19 / 1.01.

    Returns:
        float32[N, 29, 29, C]; NaN where more than half an output pixel's footprint is masked.

    Notes:
        Each alert is processed alone (float64 matrix products per channel), so its result
        does not depend on which other alerts share the batch.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"resample_to_tomoe expects images [N, H, W, C], got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("resample_to_tomoe: images contain +-inf; masked pixels must be NaN")
    wy = overlap_weights(x.shape[1], CUTOUT_SIZE, ratio)
    wx = overlap_weights(x.shape[2], CUTOUT_SIZE, ratio)
    area = wy.sum(1)[:, None] * wx.sum(1)[None, :]
    out = np.empty((x.shape[0], CUTOUT_SIZE, CUTOUT_SIZE, x.shape[3]), np.float32)
    for n in range(x.shape[0]):
        for c in range(x.shape[3]):
            img = x[n, :, :, c]
            finite = np.isfinite(img)
            flux = wy @ np.where(finite, img, 0.0) @ wx.T
            covered = wy @ finite.astype(np.float64) @ wx.T
            keep = covered >= (1.0 - MAX_MASKED_FRACTION) * area * (1 - 1e-12)
            with np.errstate(invalid="ignore", divide="ignore"):
                val = np.where(covered >= area * (1 - 1e-12), flux, flux * area / covered)
            out[n, :, :, c] = np.where(keep, val, np.nan)
    return out


def _mask_sentinels(images: np.ndarray) -> tuple[np.ndarray, int]:
    if np.isinf(images).any():
        raise ValueError("'images' contain +-inf; masked pixels must be NaN")
    with np.errstate(invalid="ignore"):
        sentinel = np.abs(images) >= SENTINEL_ABS  # NaN compares False
    n = int(sentinel.sum())
    return (np.where(sentinel, np.float32(np.nan), images) if n else images), n


def load_alerts(path) -> AlertSet:
    """Load ZTF alerts: 63x63 stamps (cut and resampled here) or cutouts already on the grid.

    Args:
        path: an .npz with at least `images` float[N, H, W, 3] (ref, new, sub), `ids`,
            `drb` and `weak_labels` of length N. H = W >= 35 at 1.01"/px is cut and resampled
            here; H = W = 29 must carry `pixel_scale_arcsec` = 1.19 (already on the Tomo-e grid).

    Returns:
        An `AlertSet`; `meta` holds every 1-D array of length N in the file.

    Raises:
        FileNotFoundError: no such file. ValueError: missing arrays or wrong shapes/values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ZTF alert file here")
    with np.load(path, allow_pickle=False) as d:
        arrays = {k: d[k] for k in d.files}
    missing = [k for k in REQUIRED_ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; expected at least {REQUIRED_ARRAYS}")
    images = arrays["images"]
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(
            f"{path}: 'images' must be float[N, H, H, 3] (ref, new, sub), got {images.shape}"
        )
    n, size = images.shape[0], images.shape[1]
    meta = {k: v for k, v in arrays.items() if k != "images" and v.ndim == 1 and len(v) == n}
    for k in REQUIRED_ARRAYS[1:]:
        if k not in meta:
            raise ValueError(f"{path}: '{k}' must be 1-D of length N = {n}, got {arrays[k].shape}")
    if not np.isin(meta["weak_labels"], (-1, 0, 1)).all():
        raise ValueError(f"{path}: 'weak_labels' must be 1 (asteroid match), 0 or -1")
    if size == CUTOUT_SIZE:
        scale = arrays.get("pixel_scale_arcsec")
        if scale is None or not np.isclose(float(scale), TOMOE_PIXEL_SCALE):
            raise ValueError(
                f"{path}: 29x29 images need 'pixel_scale_arcsec' = {TOMOE_PIXEL_SCALE} "
                f"(cutouts already on the Tomo-e grid), got {scale}"
            )
        out = images.astype(np.float32)
        if np.isinf(out).any():
            raise ValueError(f"{path}: 'images' contain +-inf; masked pixels must be NaN")
        n_sent = int(arrays.get("n_sentinel_masked", 0))
        resampled = False
    else:
        if size < 35:
            raise ValueError(
                f"{path}: {size}x{size} stamps are too small; a Tomo-e cutout spans "
                f"{CUTOUT_SIZE * TOMOE_PIXEL_SCALE / ZTF_PIXEL_SCALE:.2f} ZTF pixels"
            )
        try:
            masked, n_sent = _mask_sentinels(images.astype(np.float32))
            out = resample_to_tomoe(masked)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
        resampled = True
    frame = pd.DataFrame(meta)
    frame["drb"] = frame["drb"].astype(np.float64)
    frame["weak_labels"] = frame["weak_labels"].astype(np.int64)
    return AlertSet(out, frame, path, resampled, n_sent)


# ------------------------------------------------------------------ scoring and agreement


def agreement_with_drb(
    logits, drb, weak_labels, *, threshold: float, n_boot: int = 1000, seed: int = 0
) -> dict:
    """How one model's scores agree with ZTF's drb, and its recall on asteroid matches.

    Args:
        logits: float[N] model logits (probability = sigmoid).
        drb: float[N] ZTF deep real/bogus score, NaN where absent.
        weak_labels: int[N], 1 = matched to a known solar-system object.
        threshold: registration threshold on the probability.
        n_boot: bootstrap resamples for the AUC interval.
        seed: bootstrap seed.

    Returns:
        dict: auc_vs_drb (ROC AUC of the logit against drb >= 0.5, alerts with finite drb),
        its 95 % bootstrap interval, spearman_vs_drb (rank correlation of logit and drb),
        asteroid_recall (fraction of asteroid matches with probability >= threshold) and
        the counts n_alerts, n_with_drb, n_drb_real, n_drb_bogus, n_asteroids,
        n_asteroids_registered. Metrics that need a missing class are None.

    Notes:
        Logits, not probabilities, are ranked: float probabilities saturate at 1.0 and tie.
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from rbcore.metrics import bootstrap_interval

    logits = np.asarray(logits, np.float64)
    drb = np.asarray(drb, np.float64)
    weak = np.asarray(weak_labels)
    if not (logits.shape == drb.shape == weak.shape) or logits.ndim != 1:
        raise ValueError(
            f"logits, drb, weak_labels must be 1-D of one length, got "
            f"{logits.shape}, {drb.shape}, {weak.shape}"
        )
    if not np.isfinite(logits).all():
        raise ValueError(f"logits contain {int((~np.isfinite(logits)).sum())} non-finite values")
    has = np.isfinite(drb)
    y = (drb[has] >= DRB_THRESHOLD).astype(np.int64)
    s = logits[has]
    both = 0 < y.sum() < y.size
    auc = float(roc_auc_score(y, s)) if both else None
    ci = (
        list(bootstrap_interval(roc_auc_score, y, s, n_boot=n_boot, seed=seed))
        if both and n_boot >= 2
        else None
    )
    rho = float(spearmanr(s, drb[has]).statistic) if has.sum() > 2 else None
    ast = weak == 1
    registered = int((sigmoid(logits[ast]) >= threshold).sum())
    return {
        "auc_vs_drb": auc,
        "auc_vs_drb_ci95": ci,
        "spearman_vs_drb": rho,
        "asteroid_recall": registered / int(ast.sum()) if ast.any() else None,
        "registration_threshold": float(threshold),
        "drb_threshold": DRB_THRESHOLD,
        "n_alerts": int(logits.size),
        "n_with_drb": int(has.sum()),
        "n_drb_real": int(y.sum()),
        "n_drb_bogus": int(y.size - y.sum()),
        "n_asteroids": int(ast.sum()),
        "n_asteroids_registered": registered,
    }


def strongest_disagreements(logits, drb, *, we_say_real: bool, k: int) -> np.ndarray:
    """Indices of the k alerts where the model and drb disagree most, in one direction.

    Args:
        logits: float[N] model logits. drb: float[N], NaN where absent (never selected).
        we_say_real: True -> model probability >= 0.5 and drb < 0.5, largest
            probability - drb first; False -> the reverse (model bogus, drb real).
        k: at most this many indices.

    Returns:
        int[<= k] indices into the alerts.
    """
    p = sigmoid(logits)
    drb = np.asarray(drb, np.float64)
    with np.errstate(invalid="ignore"):
        if we_say_real:
            ok, gap = (p >= 0.5) & (drb < DRB_THRESHOLD), p - drb
        else:
            ok, gap = (p < 0.5) & (drb >= DRB_THRESHOLD), drb - p
    idx = np.nonzero(ok & np.isfinite(drb))[0]
    return idx[np.argsort(-gap[idx], kind="stable")][:k]


def write_report(path, report: dict, **run) -> Path:
    """Write the real-alert results as JSON, with the run's settings `run` under "run"
    (atomic: a temporary file renamed into place)."""
    return write_json_atomic(path, {**report, "run": run}, indent=2, sort_keys=True)


def real_alert_report(
    models: dict, alerts: AlertSet, *, threshold: float, n_boot: int = 1000, seed: int = 0
) -> tuple[dict, dict]:
    """Score `alerts` with each model and measure agreement with drb.

    Args:
        models: name -> RBCNN (e.g. {"current": ..., "vat": ...}).
        alerts: an `AlertSet`.
        threshold: registration threshold on the probability.
        n_boot, seed: bootstrap of the AUC interval.

    Returns:
        (report, logits): report[name] = `agreement_with_drb(...)` plus a "data" entry
        describing the alert file; logits[name] = float32[N].
    """

    logits = {name: predict_logits(m, alerts.images) for name, m in models.items()}
    drb, weak = alerts.meta["drb"].to_numpy(), alerts.meta["weak_labels"].to_numpy()
    report = {
        name: agreement_with_drb(lg, drb, weak, threshold=threshold, n_boot=n_boot, seed=seed)
        for name, lg in logits.items()
    }
    report["data"] = {
        "alerts_path": str(alerts.path),
        "resampled_on_load": alerts.resampled_on_load,
        "n_alerts": len(alerts),
        "nan_pixel_fraction": float(np.isnan(alerts.images).mean()),
        "n_sentinel_masked": alerts.n_sentinel_masked,
        "pixel_scale_arcsec": TOMOE_PIXEL_SCALE,
        "source_pixel_scale_arcsec": ZTF_PIXEL_SCALE,
    }
    return report, logits

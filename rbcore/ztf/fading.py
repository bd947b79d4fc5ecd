"""Fading candidates for the ZTF-like simulation: brightening triplets reversed in time.

ZTF detects on both sci - ref (`isdiffpos` 't') and ref - sci ('f', a source fainter than in
the reference) and stores the subtraction it detected on, so the source is positive in the
stored difference either way (`rbcore.ztf.stamps`). About a quarter of the developer alerts
are fading (`rbcore.simulation.presets.ZTF_FADING_FRACTION`); the simulator draws only
brightening candidates (sub = new - matched ref, source positive).

`add_fading` turns a seeded share of the simulated stamps into fading ones by reversing time:
the epoch that was "new" becomes the reference and the reference becomes the science image.
The stored ZTF difference of the reversed pair is ref - sci = (old new) - (old ref) = the old
sub, so `sub` is kept as it is (positive at the source, as ZTF stores a `refmsci` stamp) and
only the ref and new channels are swapped: the source now sits in ref and is fainter or
absent in new.

Which categories can fade (`FADING_CATEGORIES`): real sources (variables, supernovae, the
injected PSFs) and the bogus that a subtraction leaves in either sign (star and galaxy-core
residuals, dipoles, bright-star rings, noise peaks, the masked block in sub). Bogus made by
the science exposure only (cosmic rays, hot pixels, trails, tracking errors, ghosts) and
asteroids are absent from a coadded reference of 15-40 frames (Masci et al. 2019), so they
never fade; none of the 119 asteroid-matched developer alerts is 'f'. A star on a masked
reference block stays brightening too (its reverse would put the mask on sci, where ZTF's
difference is masked as well). Eligible rows fade with probability fraction / (eligible
share), so that the expected share over all rows is `fraction`.

What swapping gets wrong (stated, not modelled): the reversed "ref" is a single 30 s epoch
with its noise, seeing and saturation, and the reversed "new" is the deep coadd with the
reference's noise (~1.5 mag deeper) and PSF; the pixel units differ by the zero points
(the model's per-channel min-max normalisation removes scale and offset, not noise or PSF);
and sub is the old one, so its noise is the old science frame's, as it would be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Categories whose time reverse ZTF would detect on ref - sci (see the module docstring).
FADING_CATEGORIES = (
    "rand",
    "galx",
    "sn_host",
    "sn_hostless",
    "variable_star",
    "star_residual",
    "dipole",
    "bright_star",
    "mask_sub",
    "noise",
    "galaxy_nucleus",
)
# Random stream of the fading draw, apart from the simulation's own (any fixed constant).
FADING_STREAM = 1406


def add_fading(
    stamps: np.ndarray, table: pd.DataFrame, *, fraction: float, seed: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """Reverse a seeded share `fraction` of the candidates in time (ref <-> new).

    Args:
        stamps: float[n, S, S, 3] (ref, new, sub) simulated stamps, sub = new - matched ref.
        table: their table (a `category` column).
        fraction: expected share of fading rows over all rows, in [0, 1).
        seed: same seed, same rows.

    Returns:
        A new stamps array (the input is not modified) and a copy of the table with
        `is_fading` (int8, 1 = fading: source in ref, stored sub = ref - sci).
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"add_fading: fraction must lie in [0, 1), got {fraction}")
    if len(stamps) != len(table):
        raise ValueError(f"add_fading: {len(stamps)} stamps but {len(table)} table rows")
    eligible = table["category"].isin(FADING_CATEGORIES).to_numpy()
    if fraction > 0 and eligible.mean() < fraction:
        raise ValueError(
            f"add_fading: only {eligible.mean():.3f} of the rows can fade, below {fraction}"
        )
    p = fraction / eligible.mean() if fraction > 0 else 0.0
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), FADING_STREAM]))
    fading = eligible & (rng.uniform(size=len(table)) < p)
    out = np.array(stamps, copy=True)
    out[fading, ..., 0] = stamps[fading, ..., 1]
    out[fading, ..., 1] = stamps[fading, ..., 0]
    tab = table.copy()
    tab["is_fading"] = fading.astype(np.int8)
    return out, tab

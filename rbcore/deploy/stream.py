"""One week in the pipeline: stream simulated candidates through both models into a database.

The talk's last act (Takahashi 2021; Takahashi et al. 2022, Sec. 6): the VAT model went into
the Tomo-e Gozen pipeline, and in one week (~57.4 million candidates, 30 of them transients
known to TNS) the registered candidates fell from ~6,000 to ~150 a day. Here each night is
simulated in chunks (`rbcore.simulation.simulate_candidates(kind="stream")`), each chunk is
normalized and scored by both models in one XLA call per batch while the next chunk is being
simulated in a background thread, and the chunk's results go to the candidate database
(`rbcore.deploy.db`) in one transaction. A night is never held in memory.

Rare classes: at the talk's rates a week holds ~30 supernovae; `boost` multiplies the rate of
supernovae and variable stars in the stream and every row carries `weight` = p/q (natural
over simulated probability of its class), so weighted sums are the counts of a stream at
natural rates ("effective" counts) while the raw counts say how many were simulated.

Resume: a night is committed when its `nights` row exists; a rerun skips committed nights and,
in the first uncommitted night, the chunks already written (a chunk is determined by
(seed, night, chunk index), so the resumed week equals an uninterrupted one).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from rbcore.deploy.db import CandidateDB
from rbcore.files import write_json_atomic
from rbcore.inference import MODEL_NAMES, sigmoid
from rbcore.model import IMAGE_SHAPE
from rbcore.onnx_export import DEFAULT_ENGINE, ENGINES, make_scorer
from rbcore.profiles import settings

# The talk's one-week confusion matrix at threshold 0.8: bogus 57,386,470 (TN) + 36,337 (FP),
# real 1 (FN) + 29 (TP).
TALK_WEEK_CANDIDATES = 57_386_470 + 36_337 + 1 + 29  # 57,422,837
TALK_NIGHTS = 7  # "1週間" (one week)
TALK_CANDIDATES_PER_NIGHT = TALK_WEEK_CANDIDATES // TALK_NIGHTS  # 8,203,262
TALK_THRESHOLD = 0.8  # the talk's registration threshold ("threshold: 0.800")
TALK_BUDGET_PER_DAY = 150  # talk: "150天体/day (人がチェックできるレベル)"
# "Real" in the talk's deployment matrix = transients known to TNS; variable stars are counted
# apart (the talk quotes P(variable) separately), so they are negatives of the matrix here.
TRANSIENT_CATEGORIES = ("sn_host", "sn_hostless")
VARIABLE_CATEGORIES = ("variable_star",)
TRUTH_CLASSES = ("bogus", "transient", "variable")
# Logit histogram of every candidate (for thresholds other than the registration one):
# bins of 1/16 in logit over [-40, 40], plus under/overflow. The range is wide because a
# confident model puts many bogus beyond logit 16 (probability 1 - 1e-7): with [-16, 16] the
# VAT model of the default profile had more than the nightly budget in the overflow bin.
HIST_EDGES = np.concatenate([[-np.inf], np.linspace(-40.0, 40.0, 1281), [np.inf]])


@dataclasses.dataclass(frozen=True)
class DeployConfig:
    """Size and settings of a deployment week (every default with its source)."""

    n_nights: int = TALK_NIGHTS  # the talk: one week
    candidates_per_night: int = TALK_CANDIDATES_PER_NIGHT  # the talk: 57.4 M / 7 nights
    chunk_size: int = 16_384  # candidates simulated + written per transaction (~160 MB raw)
    batch_size: int = 1_024  # candidates per XLA call (fixed shape; fastest on 2 CPU cores)
    threshold: float = TALK_THRESHOLD  # registration threshold on the probability (talk: 0.8)
    boost: float = 1.0  # rate multiplier of supernovae and variable stars (1 = natural)
    seed: int = 0  # the week's random stream: chunk k of night j uses SeedSequence([seed, j, k])
    fp_cutouts_per_category: int = 2  # false positives kept per chunk, category and model
    fp_cutout_chunks: int = 8  # chunks per night (evenly spaced) whose FPs are sampled: bounds
    # the stored cutouts (~10 kB each) to 7 x 8 x 2 x 2 x 16 categories at most
    max_transient_cutouts: int = 256  # transient cutouts kept per chunk (all, at natural rates)
    sim_threads: int = 1  # simulator threads (the scorer uses the other core)
    engine: str = DEFAULT_ENGINE  # "jax" or "onnx" (onnxruntime): rbcore.onnx_export.ENGINES,
    # the faster here by default (benchmarks/README.md)

    def __post_init__(self):
        for name in ("n_nights", "candidates_per_night", "chunk_size", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DeployConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"DeployConfig.threshold must be in (0, 1), got {self.threshold}")
        if self.boost < 1.0:
            raise ValueError(f"DeployConfig.boost must be >= 1, got {self.boost}")
        if self.engine not in ENGINES:
            raise ValueError(f"DeployConfig.engine must be one of {ENGINES}, got {self.engine!r}")

    @property
    def n_chunks(self) -> int:
        """Chunks per night."""
        return -(-self.candidates_per_night // self.chunk_size)

    @property
    def volume_scale(self) -> float:
        """Talk's candidates per night over ours: multiplies counts to the talk's volume."""
        return TALK_CANDIDATES_PER_NIGHT / self.candidates_per_night

    def fingerprint(self) -> dict:
        """What must not change between a run and its resumption (n_nights may grow)."""
        d = dataclasses.asdict(self)
        d.pop("n_nights")
        d.pop("sim_threads")
        # How the logits are computed, not what: the engines agree to 1e-4 in logit
        # (tests/test_onnx_export.py), so a week may resume on the other engine.
        d.pop("engine")
        return d


def profile_config(profile: str, **overrides) -> DeployConfig:
    """The `DeployConfig` of a profile (`rbcore.profiles`, step "deploy"); None keeps its value."""
    return DeployConfig(**settings(profile, "deploy", **overrides))


# ------------------------------------------------------------------------------ the stream


def truth_class(category) -> np.ndarray:
    """'transient' (TNS-like supernovae), 'variable' (variable stars) or 'bogus' per row."""
    c = np.asarray(category, dtype=object)
    out = np.full(c.shape, "bogus", dtype=object)
    out[np.isin(c, TRANSIENT_CATEGORIES)] = "transient"
    out[np.isin(c, VARIABLE_CATEGORIES)] = "variable"
    return out


def candidate_ids(night: int, chunk: int, n: int, chunk_size: int) -> np.ndarray:
    """Unique ids: night * 10^9 + position in the night (a night holds < 10^9 candidates)."""
    return np.int64(night) * 1_000_000_000 + chunk * chunk_size + np.arange(n, dtype=np.int64)


STREAM_COLUMNS = ("category", "is_real_true", "detector_id", "x", "y", "mag", "snr", "weight")


def chunk_rows(cfg: DeployConfig, night: int, chunk: int, images, params, logits, version):
    """A scored chunk as the rows of `CandidateDB.write_chunk`.

    Args:
        cfg: the run's config (threshold, sampling of cutouts).
        night, chunk: the chunk's key.
        images: float32[N, 29, 29, 3] raw cutouts.
        params: the simulator's table with `STREAM_COLUMNS` (truth and `weight`).
        logits: {"current": float32[N], "vat": float32[N]}.
        version: the model version stored with each candidate.

    Returns:
        (registered candidates, summary counts, logit histograms, kept cutouts), the
        arguments of `CandidateDB.write_chunk`.
    """
    missing = [c for c in STREAM_COLUMNS if c not in params.columns]
    if missing:
        raise ValueError(f"stream table of night {night}, chunk {chunk} lacks columns {missing}")
    n = len(params)
    p = {k: sigmoid(logits[k]) for k in MODEL_NAMES}
    passes = {k: p[k] >= cfg.threshold for k in MODEL_NAMES}
    truth = truth_class(params["category"])
    weight = params["weight"].to_numpy(np.float64)
    table = pd.DataFrame(
        {
            "candidate_id": candidate_ids(night, chunk, n, cfg.chunk_size),
            "night": night,
            "chunk": chunk,
            "detector_id": params["detector_id"].to_numpy(),
            "x": params["x"].to_numpy(),
            "y": params["y"].to_numpy(),
            "score_current": p["current"],
            "score_vat": p["vat"],
            "logit_current": logits["current"].astype(np.float64),
            "logit_vat": logits["vat"].astype(np.float64),
            "model_version": version,
            "category": params["category"].astype(str).to_numpy(),
            "is_real_true": params["is_real_true"].to_numpy().astype(int),
            "mag": params["mag"].to_numpy(np.float64),
            "snr": params["snr"].to_numpy(np.float64),
            "weight": weight,
            "pass_current": passes["current"].astype(int),
            "pass_vat": passes["vat"].astype(int),
        }
    )
    registered = table[(table.pass_current == 1) | (table.pass_vat == 1)]
    summary = (
        table.groupby(["category", "is_real_true", "pass_current", "pass_vat"], as_index=False)
        .agg(n=("weight", "size"), weight=("weight", "sum"))
    )  # fmt: skip
    hists = {}
    for k in MODEL_NAMES:
        if not np.isfinite(logits[k]).all():
            raise ValueError(
                f"model {k!r} gave non-finite logits in chunk {chunk} of night {night}"
            )
        b = np.searchsorted(HIST_EDGES[1:-1], logits[k], side="right")  # bin i: [e_i, e_i+1)
        for t in TRUTH_CLASSES:
            sel = truth == t
            nb = len(HIST_EDGES) - 1
            hists[(k, t)] = (np.bincount(b[sel], minlength=nb).astype(np.float64),
                             np.bincount(b[sel], weights=weight[sel], minlength=nb))  # fmt: skip
    keep = _cutout_selection(cfg, night, chunk, table, truth)
    vat_fp = table["pass_vat"].to_numpy()[keep] == 1
    reason = np.where(truth[keep] == "transient", "transient",
                      np.where(vat_fp, "fp_vat", "fp_current"))  # fmt: skip
    cut = table.iloc[keep].assign(reason=reason)
    cut["image"] = list(images[keep])
    return registered, summary, hists, cut


def _cutout_selection(cfg, night, chunk, table, truth) -> np.ndarray:
    """Rows whose pixels are kept: every transient (for the FN gallery) and, in
    `cfg.fp_cutout_chunks` evenly spaced chunks of each night, a few false positives per
    category and model (chunks of a night are exchangeable, so the sample is fair)."""
    rng = np.random.default_rng([cfg.seed, night, chunk, 7])  # 7: the cutout-sampling stream
    keep = [np.flatnonzero(truth == "transient")[: cfg.max_transient_cutouts]]
    sampled = np.linspace(0, cfg.n_chunks - 1, min(cfg.fp_cutout_chunks, cfg.n_chunks)).round()
    for k in MODEL_NAMES if chunk in sampled else ():
        fp = (table[f"pass_{k}"].to_numpy() == 1) & (truth != "transient")
        cats = table["category"].to_numpy()
        for c in np.unique(cats[fp]):
            rows = np.flatnonzero(fp & (cats == c))
            keep.append(rng.permutation(rows)[: cfg.fp_cutouts_per_category])
    return np.unique(np.concatenate(keep)).astype(int)


def run_deployment(
    models: dict,
    db: CandidateDB | str | Path,
    cfg: DeployConfig,
    *,
    simulate=None,
    survey_config=None,
    version: str = "unversioned",
    replace: bool = False,
    nights=None,
    progress: bool = True,
) -> dict:
    """Simulate, score and register `cfg.n_nights` nights into `db`; resume where it stopped.

    Args:
        models: {"current": RBCNN, "vat": RBCNN}, scored on `cfg.engine`.
        db: the candidate database, or its URL ("sqlite:///path", "postgresql://...", see
            `rbcore.deploy.db.connect`), opened for this call and closed after it.
        cfg: sizes and thresholds.
        simulate: the simulator, `simulate_candidates(n, kind="stream", seed=..., night=...,
            boost=..., config=..., n_threads=...)` (default `rbcore.simulation`'s).
        survey_config: `SurveyConfig` of the survey (default: the simulator's).
        version: model version stored with each candidate (see `model_version`).
        replace: delete the given `nights` (default all) first and run them again.
        nights: night indices to run (default range(cfg.n_nights)).
        progress: show a tqdm bar.

    Returns:
        Throughput of this call: dict with n_candidates, wall_s, simulation_s, scoring_s,
        simulation_per_s, scoring_per_s (candidates/s, both models), scoring_per_s_per_model
        (model evaluations/s), total_per_s, nights_run, nights_skipped.
    """
    if isinstance(db, str | Path):
        with CandidateDB(db) as opened:
            return run_deployment(models, opened, cfg, simulate=simulate,
                                  survey_config=survey_config, version=version, replace=replace,
                                  nights=nights, progress=progress)  # fmt: skip
    if set(models) != set(MODEL_NAMES):
        raise ValueError(f"models must be {MODEL_NAMES}, got {sorted(models)}")
    nights = list(range(cfg.n_nights)) if nights is None else [int(j) for j in nights]
    _prepare(db, cfg, nights, version, replace)
    scorer = make_scorer({k: models[k] for k in MODEL_NAMES}, cfg.batch_size, cfg.engine)
    committed = set(db.committed_nights())
    todo = [j for j in nights if j not in committed]
    done = {j: db.done_chunks(j) for j in todo}
    work = [(j, k) for j in todo for k in range(cfg.n_chunks) if k not in done[j]]
    for j in todo:  # nights whose chunks were all written by an interrupted call
        if all(jj != j for jj, _ in work):
            _commit_if_complete(db, cfg, j, seconds=0.0)
    stats = dict(n_candidates=0, simulation_s=0.0, scoring_s=0.0)
    night_t0: dict[int, float] = {}
    bar = _bar(sum(_chunk_n(cfg, k) for _, k in work), progress)
    t_start = time.perf_counter()
    simulated = _simulated_ahead(work, _chunk_simulator(cfg, simulate, survey_config))
    for i, ((j, k), (images, params, sim_s)) in enumerate(simulated):
        night_t0.setdefault(j, time.perf_counter())
        _check_chunk(cfg, j, k, images, params)
        t0 = time.perf_counter()
        logits = scorer(images)
        stats["scoring_s"] += time.perf_counter() - t0
        reg, summary, hists, cut = chunk_rows(cfg, j, k, images, params, logits, version)
        db.write_chunk(night=j, chunk=k, candidates=reg, summary=summary, hists=hists,
                       cutouts=cut)  # fmt: skip
        stats["n_candidates"] += len(params)
        stats["simulation_s"] += sim_s
        bar.update(len(params))
        if i + 1 == len(work) or work[i + 1][0] != j:
            _commit_if_complete(db, cfg, j, seconds=time.perf_counter() - night_t0[j])
    bar.close()
    return _throughput(stats, time.perf_counter() - t_start, todo, nights)


def _prepare(db: CandidateDB, cfg: DeployConfig, nights: list, version: str, replace: bool):
    """Check that `db` belongs to this run; with `replace`, clear the nights to run again."""
    if replace and nights == list(range(cfg.n_nights)):
        db.replace_all()  # the whole week over: another run may take the database
    db.check_fingerprint({**cfg.fingerprint(), "model_version": version})
    if replace and nights != list(range(cfg.n_nights)):
        for j in nights:  # only after the check: a night of another run is never deleted
            db.delete_night(j)


def _chunk_simulator(cfg: DeployConfig, simulate, survey_config):
    """(night, chunk) -> (images, params, seconds): chunk k of night j, from its own seed."""
    if simulate is None:
        from rbcore.simulation import simulate_candidates as simulate
    kw = {} if survey_config is None else {"config": survey_config}

    def simulate_chunk(job):
        j, k = job
        t0 = time.perf_counter()
        images, params = simulate(_chunk_n(cfg, k), kind="stream", night=j, boost=cfg.boost,
                                  seed=np.random.SeedSequence([cfg.seed, j, k]),
                                  n_threads=cfg.sim_threads, **kw)  # fmt: skip
        return images, params, time.perf_counter() - t0

    return simulate_chunk


def _simulated_ahead(work: list, simulate_chunk):
    """Yield (job, simulate_chunk(job)) in order, simulating the next job in a background
    thread while the caller scores and writes the current one."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(simulate_chunk, work[0]) if work else None
        for i, job in enumerate(work):
            result = future.result()
            future = pool.submit(simulate_chunk, work[i + 1]) if i + 1 < len(work) else None
            yield job, result


def _check_chunk(cfg: DeployConfig, j: int, k: int, images, params) -> None:
    if len(params) != _chunk_n(cfg, k) or images.shape != (len(params), *IMAGE_SHAPE):
        raise ValueError(f"simulator returned {images.shape} images and {len(params)} rows "
                         f"for chunk {k} of night {j}, expected {_chunk_n(cfg, k)}")  # fmt: skip


def _commit_if_complete(db: CandidateDB, cfg: DeployConfig, j: int, *, seconds: float) -> None:
    """Commit night j once all its chunks are written (the night's commit point)."""
    if j not in db.committed_nights() and db.done_chunks(j) == set(range(cfg.n_chunks)):
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        db.commit_night(j, seconds=seconds, committed_at=now)


def _chunk_n(cfg: DeployConfig, k: int) -> int:
    return min(cfg.chunk_size, cfg.candidates_per_night - k * cfg.chunk_size)


def _bar(total: int, enabled: bool):
    from tqdm import tqdm  # plain text: also readable in papermill's executed notebooks

    return tqdm(total=int(total), unit="cand", unit_scale=True, disable=not enabled,
                desc="deployment week", smoothing=0.05, mininterval=10)  # fmt: skip


def _throughput(stats: dict, wall: float, todo, nights) -> dict:
    n = stats["n_candidates"]
    rate = lambda s: n / s if s > 0 else float("nan")  # noqa: E731
    return {
        **stats,
        "wall_s": wall,
        "simulation_per_s": rate(stats["simulation_s"]),
        "scoring_per_s": rate(stats["scoring_s"]),
        "scoring_per_s_per_model": len(MODEL_NAMES) * rate(stats["scoring_s"]),
        "total_per_s": rate(wall),
        "load_average_1min": os.getloadavg()[0],  # the machine may be shared: rates scale
        "cpu_count": os.cpu_count(),  # with the free cores
        "nights_run": list(todo),
        "nights_skipped": [j for j in nights if j not in todo],
    }


def write_summary(run_dir, cfg: DeployConfig, throughput: dict, **extra) -> Path:
    """Write run_dir/deployment_summary.json (config, throughput, extra), atomically.

    A call that ran no chunk (every night already committed) keeps the stored throughput.
    """
    path = Path(run_dir) / "deployment_summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if throughput.get("n_candidates", 0) == 0 and path.exists():
        # a rerun over committed nights measured nothing: keep the run's own measurement
        throughput = json.loads(path.read_text()).get("throughput", throughput)
    body = {"config": dataclasses.asdict(cfg), "volume_scale": cfg.volume_scale,
            "throughput": throughput, **extra}  # fmt: skip
    return write_json_atomic(path, _json_ready(body), indent=2, allow_nan=False)


def _json_ready(v):
    """Plain JSON values: numpy scalars to Python, non-finite floats to null."""
    if isinstance(v, dict):
        return {str(k): _json_ready(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_ready(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v

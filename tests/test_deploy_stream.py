"""Tests of rbcore.deploy.stream: the chunk rows, the streamed week, resume and replace.

Tests taking `make_db` run on SQLite and on PostgreSQL (conftest.py)."""

import numpy as np
import pandas as pd
import pytest
from flax import nnx

from rbcore import deploy
from rbcore.deploy import DeployConfig, chunk_rows, run_deployment
from rbcore.deploy.db import CandidateDB
from rbcore.inference import Scorer, sigmoid
from rbcore.model import RBCNN
from rbcore.preprocess import normalize
from rbcore.profiles import PROFILES

CATS = np.array(["star_residual", "noise", "mask_ref", "sn_host", "variable_star"], dtype=object)


def fake_simulate(n, *, kind, seed, night, boost, n_threads=1, config=None):
    """A fast stand-in with the simulator's interface: random pixels, boosted rare classes."""
    assert kind == "stream"
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 29, 29, 3)).astype(np.float32)
    images[rng.uniform(size=images.shape) < 0.01] = np.nan  # masked pixels
    cat = CATS[rng.choice(5, size=n, p=[0.4, 0.3, 0.2, 0.05, 0.05])]
    rare = np.isin(cat, ["sn_host", "variable_star"])
    params = pd.DataFrame(
        {
            "category": cat,
            "is_real_true": rare.astype(int),
            "detector_id": rng.integers(0, 84, n),
            "x": rng.uniform(0, 2000, n),
            "y": rng.uniform(0, 1128, n),
            "mag": np.where(rare, rng.uniform(12, 19, n), np.nan),
            "snr": rng.uniform(5, 50, n),
            "weight": np.where(rare, 1.0 / boost, 1.0),
            "night": night,
        }
    )
    return images, params


@pytest.fixture(scope="module")
def models():
    """Untrained models whose output bias is shifted so that about half of the fake stream
    scores >= 0.5 (an untrained model's logits sit in a narrow band off zero)."""
    out = {"current": RBCNN(rngs=nnx.Rngs(0)), "vat": RBCNN(rngs=nnx.Rngs(1))}
    images, _ = fake_simulate(256, kind="stream", seed=99, night=0, boost=1.0)
    for name, m in out.items():
        m.eval()
        med = float(np.median(np.asarray(m(normalize(images)))))
        m.dense3.bias[...] = m.dense3.bias[...] - med + (0.01 if name == "vat" else -0.01)
    return out


def small_cfg(**kw):
    # Untrained models give probabilities near 0.5: threshold 0.5 registers about half.
    base = dict(n_nights=3, candidates_per_night=150, chunk_size=64, batch_size=32,
                threshold=0.5, boost=4.0, seed=3)  # fmt: skip
    return DeployConfig(**{**base, **kw})


def table(db, name, order):
    return db.query(f"SELECT * FROM {name} ORDER BY {order}").reset_index(drop=True)


def test_chunk_rows_flags_summary_and_histograms(models):
    cfg = small_cfg(threshold=0.8)
    images, params = fake_simulate(64, kind="stream", seed=1, night=2, boost=4.0)
    logits = {"current": np.linspace(-3, 3, 64).astype(np.float32),
              "vat": np.linspace(3, -3, 64).astype(np.float32)}  # fmt: skip
    reg, summary, hists, cut = chunk_rows(cfg, 2, 1, images, params, logits, "v")
    p_cur, p_vat = sigmoid(logits["current"]), sigmoid(logits["vat"])
    either = (p_cur >= 0.8) | (p_vat >= 0.8)
    assert len(reg) == either.sum() > 0
    assert reg["candidate_id"].min() == 2 * 10**9 + 64
    assert summary["n"].sum() == 64
    np.testing.assert_allclose(summary["weight"].sum(), params["weight"].sum())
    assert summary.loc[summary.pass_current == 1, "n"].sum() == (p_cur >= 0.8).sum()
    for (_m, t), (c, w) in hists.items():
        sel = deploy.truth_class(params["category"]) == t
        assert c.sum() == sel.sum()
        np.testing.assert_allclose(w.sum(), params["weight"][sel].sum())
    # every transient is kept (for the FN gallery); every kept non-transient is registered
    is_tr = cut["category"].isin(deploy.TRANSIENT_CATEGORIES)
    assert is_tr.sum() == params["category"].isin(deploy.TRANSIENT_CATEGORIES).sum()
    assert ((cut.pass_current == 1) | (cut.pass_vat == 1))[~is_tr].all()
    assert np.shape(cut["image"].iloc[0]) == (29, 29, 3)


def test_week_counts_match_an_independent_rescoring(make_db, models):
    cfg = small_cfg()
    db = make_db()
    tp = run_deployment(models, db, cfg, simulate=fake_simulate, progress=False)
    assert db.committed_nights() == [0, 1, 2]
    assert tp["n_candidates"] == 450 and tp["scoring_per_s"] > 0
    scorer = Scorer(models, 32)
    n_reg, w_tr = 0, 0.0
    for j in range(3):
        for k in range(cfg.n_chunks):
            n = min(64, 150 - 64 * k)
            im, par = fake_simulate(n, kind="stream", seed=np.random.SeedSequence([3, j, k]),
                                    night=j, boost=4.0)  # fmt: skip
            p = {m: sigmoid(v) for m, v in scorer(im).items()}
            n_reg += int(((p["current"] >= 0.5) | (p["vat"] >= 0.5)).sum())
            w_tr += par["weight"][par.category == "sn_host"].sum()
    assert 0 < n_reg < 450  # the stand-in models register some, not all
    assert len(table(db, "candidates", "candidate_id")) == n_reg
    nights = table(db, "nights", "night")
    assert nights["n_candidates"].tolist() == [150, 150, 150]
    # committed nights keep one histogram row per (model, truth), chunk -1
    assert db.query("SELECT DISTINCT chunk FROM score_hist")["chunk"].tolist() == [-1]
    assert len(db.query("SELECT * FROM score_hist WHERE night = 0")) == 6
    from rbcore.deploy.report import confusion_counts

    cm = confusion_counts(db, "vat")
    assert cm["raw"].sum() == 450
    np.testing.assert_allclose(cm["effective"][1].sum(), w_tr)  # weighted transients


def test_false_positive_cutouts_come_from_the_sampled_chunks(make_db, models):
    cfg = small_cfg(fp_cutout_chunks=1, candidates_per_night=300)  # 5 chunks, FPs from chunk 0
    db = make_db()
    run_deployment(models, db, cfg, simulate=fake_simulate, progress=False)
    cut = db.query("SELECT chunk, reason, category FROM cutouts")
    assert set(cut.loc[cut.reason != "transient", "chunk"]) == {0}
    per_cat = cut[cut.reason == "fp_vat"].groupby("category").size()
    assert (per_cat <= 3 * cfg.fp_cutouts_per_category * 2).all()
    assert (cut.reason == "transient").sum() == (cut.category == "sn_host").sum() > 0


def test_rerunning_a_night_replaces_it(make_db, models):
    cfg = small_cfg()
    db = make_db()
    run_deployment(models, db, cfg, simulate=fake_simulate, progress=False)
    before = table(db, "candidates", "candidate_id")
    summary = table(db, "night_summary", "night, chunk, category, pass_current, pass_vat")
    out = run_deployment(models, db, cfg, simulate=fake_simulate, progress=False, replace=True,
                         nights=[1])  # fmt: skip
    assert out["nights_run"] == [1] and out["n_candidates"] == 150
    pd.testing.assert_frame_equal(table(db, "candidates", "candidate_id"), before)
    pd.testing.assert_frame_equal(
        table(db, "night_summary", "night, chunk, category, pass_current, pass_vat"), summary
    )
    again = run_deployment(models, db, cfg, simulate=fake_simulate, progress=False)
    assert again["n_candidates"] == 0 and again["nights_skipped"] == [0, 1, 2]


class Interrupt(RuntimeError):
    pass


def test_interrupted_week_resumes_to_the_same_database(make_db, models):
    cfg = small_cfg()
    ref = make_db()
    run_deployment(models, ref, cfg, simulate=fake_simulate, progress=False)

    calls = []

    def dying_simulate(n, **kw):
        calls.append(1)
        if len(calls) == 5:  # chunks 0-3 are written: nights 0 (3 chunks) and 1 (1 chunk)
            raise Interrupt("killed")
        return fake_simulate(n, **kw)

    db = make_db()
    with pytest.raises(Interrupt):
        run_deployment(models, db, cfg, simulate=dying_simulate, progress=False)
    assert db.committed_nights() == [0]
    assert db.done_chunks(1) == {0}
    calls.clear()
    out = run_deployment(models, db, cfg, simulate=fake_simulate, progress=False)
    assert out["nights_skipped"] == [0]
    assert out["n_candidates"] == 150 - 64 + 150  # the rest of night 1, then night 2
    for name, order in [("candidates", "candidate_id"), ("cutouts", "candidate_id"),
                        ("night_summary", "night, chunk, category, pass_current, pass_vat")]:  # fmt: skip
        pd.testing.assert_frame_equal(table(db, name, order), table(ref, name, order))
    hist_ref, hist = (
        ref.histograms(len(deploy.HIST_EDGES) - 1),
        db.histograms(len(deploy.HIST_EDGES) - 1),
    )
    for key in hist_ref:
        np.testing.assert_array_equal(hist[key][0], hist_ref[key][0])


def test_resume_refuses_another_run(make_db, models):
    db = make_db()
    run_deployment(models, db, small_cfg(n_nights=1), simulate=fake_simulate, progress=False)
    with pytest.raises(ValueError, match="seed"):
        run_deployment(models, db, small_cfg(seed=4), simulate=fake_simulate, progress=False)
    with pytest.raises(ValueError, match="seed"):  # replacing one night checks first
        run_deployment(models, db, small_cfg(seed=4), simulate=fake_simulate, progress=False,
                       replace=True, nights=[0])  # fmt: skip
    assert db.committed_nights() == [0]  # nothing deleted


def test_run_deployment_takes_a_url(make_url, models):
    url = make_url()
    cfg = small_cfg(n_nights=1)
    out = run_deployment(models, url, cfg, simulate=fake_simulate, progress=False)
    assert out["nights_run"] == [0]
    with CandidateDB(url) as db:  # the call closed its connection; the night is committed
        assert db.committed_nights() == [0]
        assert db.query("SELECT SUM(n) AS n FROM night_summary")["n"].item() == 150


def test_real_simulator_stream(tmp_path, models):
    cfg = small_cfg(n_nights=1, candidates_per_night=200, chunk_size=128, boost=1000.0)
    db = CandidateDB(tmp_path / "c.sqlite")
    run_deployment(models, db, cfg, progress=False)
    s = db.query("SELECT SUM(n) AS n, SUM(weight) AS w FROM night_summary").iloc[0]
    assert s["n"] == 200
    assert s["w"] == pytest.approx(200, rel=0.2)  # weights undo the boost on average


def test_config_validation_and_profiles():
    with pytest.raises(ValueError, match="threshold"):
        DeployConfig(threshold=1.0)
    with pytest.raises(ValueError, match="boost"):
        DeployConfig(boost=0.5)
    paper = deploy.profile_config("paper")
    assert paper.n_nights * paper.candidates_per_night == pytest.approx(57.4e6, rel=0.01)
    assert paper.volume_scale == pytest.approx(1.0, rel=1e-6)
    assert deploy.profile_config("smoke", boost=None).boost == PROFILES["smoke"]["deploy"]["boost"]
    with pytest.raises(ValueError, match="profile"):
        deploy.profile_config("huge")

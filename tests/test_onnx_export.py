"""Tests of rbcore.onnx_export: the ONNX export's round trip, the ONNX engine, the CLI."""

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from flax import nnx

from rbcore import onnx_export
from rbcore.checkpoint import save_model
from rbcore.cli import main
from rbcore.deploy import DeployConfig, run_deployment
from rbcore.inference import Scorer, predict_logits
from rbcore.model import ARCHITECTURES, build_model, model_config
from rbcore.preprocess import normalize_jax

# Every network rbcore builds (rbcore.model.build_model): the export must hold for each.
CONFIGS = [{"architecture": a} for a in ARCHITECTURES]
TOLERANCE = 1e-4  # issue 24: ONNX and rbcore logits agree within 1e-4
# jax2onnx 0.17's nnx plugins read parameters through the deprecated `.value`
pytestmark = pytest.mark.filterwarnings("ignore:'.value' access is now deprecated")


def cutouts(n=300, seed=0):
    """Raw triplets like the data's: sky levels and scales per channel, masked pixels (NaN),
    a fully masked triplet, a fully masked channel and a flat channel."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 29, 29, 3)) * rng.uniform(1, 300, (n, 1, 1, 3))
    x += rng.uniform(-100, 1000, (n, 1, 1, 3))
    x[rng.uniform(size=x.shape) < 0.015] = np.nan  # ~1.4 % masked, as ZTF
    x[:40, 5:12, 8:20, :] = np.nan  # masked regions
    x[40] = np.nan
    x[41, :, :, 1] = np.nan
    x[42, :, :, 2] = 7.0
    return x.astype(np.float32)


def spread_model(config, seed=0):
    """A model whose logits spread over several units (an untrained one's sit near a point):
    the output layer scaled so that 1e-4 is a tight tolerance."""
    model = build_model(config, seed=seed)
    model.eval()
    ref = predict_logits(model, cutouts(64, seed=5))
    scale = 3.0 / max(float(np.std(ref)), 1e-6)
    (last,) = (m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.Linear)
               and m.out_features == 1)  # fmt: skip
    last.kernel[...] = last.kernel[...] * scale  # the logit layer
    return model


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: c["architecture"])
def exported(request, tmp_path_factory):
    """(model, checkpoint dir, .onnx path) of one architecture, exported by the CLI."""
    tmp = tmp_path_factory.mktemp("onnx")
    model = spread_model(request.param)
    ckpt = save_model(tmp / "vat", model)
    out = tmp / "model.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--output", str(out)]) == 0
    return model, ckpt, out


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """The talk's CNN, saved (for the tests that need one network only)."""
    model = spread_model({"architecture": "RBCNN"}, seed=1)
    return model, save_model(tmp_path_factory.mktemp("cnn") / "current", model)


def test_onnxruntime_matches_rbcore_on_masked_cutouts(exported):
    model, ckpt, path = exported
    x = cutouts()
    ref = Scorer({"m": model}, 128)(x)["m"]
    assert np.isfinite(ref).all() and np.std(ref) > 1.0  # the comparison is not of constants
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, inp.shape[1:], out.name) == ("triplets", [29, 29, 3], "logit")
    got = np.concatenate([sess.run(None, {"triplets": x[i : i + 120]})[0] for i in (0, 120, 240)])
    assert got.shape == (300,) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=TOLERANCE, rtol=0)
    one = sess.run(None, {"triplets": x[40:41]})[0]  # a fully masked triplet, alone
    np.testing.assert_allclose(one, ref[40:41], atol=TOLERANCE, rtol=0)
    inf, nan = x[50:52].copy(), x[50:52].copy()  # +-inf (refused by rbcore): as if masked
    inf[:, 3, 4, 0], inf[:, 9, 9, 2], nan[:, 3, 4, 0], nan[:, 9, 9, 2] = (
        np.inf,
        -np.inf,
        np.nan,
        np.nan,
    )
    np.testing.assert_array_equal(*(sess.run(None, {"triplets": v})[0] for v in (inf, nan)))


def test_metadata_records_the_version_and_checkpoint_hash(exported):
    model, ckpt, path = exported
    stored = json.loads((ckpt / "config.json").read_text())
    meta = onnx_export.read_metadata(path)
    assert meta["weights_sha256"] == stored["weights_sha256"]
    assert meta["model_version"] == f"vat:{stored['weights_sha256'][:12]}"
    assert json.loads(meta["model_config"]) == model_config(model)
    import onnx

    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == onnx_export.OPSET
    assert "NaN = masked" in proto.doc_string


def test_the_export_normalizes_as_rbcore_bit_for_bit():
    x = cutouts(64, seed=8)
    np.testing.assert_array_equal(
        np.asarray(onnx_export.normalize_channels_first(x)), np.asarray(normalize_jax(x))
    )


def test_the_plain_form_equals_the_model():
    """RBCNN's plain form (nnx.max_pool, the direct conv1) against its own fast forward."""
    model = spread_model({"architecture": "RBCNN"}, seed=2)
    x = cutouts(128, seed=3)
    plain = np.asarray(onnx_export.logits_function(model)(x))
    np.testing.assert_allclose(plain, predict_logits(model, x), atol=TOLERANCE, rtol=0)


def test_onnx_scorer_equals_scorer_for_several_models_and_any_batch(cnn, tmp_path):
    model, ckpt = cnn
    path = onnx_export.export_checkpoint(ckpt, tmp_path / "cnn.onnx")
    other = build_model(model_config(model), seed=7)
    x = cutouts(150, seed=4)
    ref = Scorer({"a": model, "b": other}, 64)(x)
    got = onnx_export.OnnxScorer({"a": path, "b": other}, 64)(x)
    for k in ("a", "b"):
        np.testing.assert_allclose(got[k], ref[k], atol=TOLERANCE, rtol=0)
    small = onnx_export.OnnxScorer({"a": path}, 1024)(x[:3])["a"]
    np.testing.assert_allclose(small, ref["a"][:3], atol=TOLERANCE, rtol=0)
    assert onnx_export.OnnxScorer({"a": path}, 8)(x[:0])["a"].shape == (0,)
    bad = x[:20].copy()
    bad[13, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="triplet 13"):
        onnx_export.OnnxScorer({"a": path}, 8)(bad)
    with pytest.raises(ValueError, match="engine must be one of"):
        onnx_export.make_scorer({"a": model}, 8, "tflite")


def test_cli_score_with_the_onnx_engine(exported, tmp_path, capsys):
    model, ckpt, path = exported
    x = cutouts(50, seed=6)
    np.save(tmp_path / "c.npy", x)
    pd.DataFrame({"candidate_id": np.arange(50) + 10}).to_csv(tmp_path / "c_params.csv")
    outs = {}
    for name, args in {
        "jax": [str(ckpt), "--engine", "jax"],
        "onnx": [str(ckpt), "--engine", "onnx"],
        "file": [str(path), "--engine", "onnx"],
    }.items():
        out = tmp_path / f"{name}.csv"
        assert main(["score", "--checkpoint", *args, "--input", str(tmp_path / "c.npy"),
                     "--output", str(out), "--no-progress"]) == 0  # fmt: skip
        outs[name] = pd.read_csv(out)
    for name in ("onnx", "file"):
        assert outs[name]["candidate_id"].tolist() == list(range(10, 60))
        np.testing.assert_allclose(outs[name]["logit"], outs["jax"]["logit"], atol=TOLERANCE)
    capsys.readouterr()
    code = main(["score", "--checkpoint", str(path), "--engine", "jax", "--input",
                 str(tmp_path / "c.npy"), "--output", str(tmp_path / "x.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--engine onnx" in err and not (tmp_path / "x.csv").exists()


def test_cli_export_refuses_bad_paths(cnn, tmp_path, capsys):
    _, ckpt = cnn
    cases = {
        "missing": (tmp_path / "nothing", tmp_path / "m.onnx", "no checkpoint config"),
        "folder": (ckpt, tmp_path, "is a directory"),
        "no dir": (ckpt, tmp_path / "a" / "m.onnx", "does not exist"),
        "input": (ckpt, ckpt / "weights.msgpack", "replace a file of the checkpoint"),
    }
    before = (ckpt / "weights.msgpack").read_bytes()
    for src, out, message in cases.values():
        assert main(["export", "--checkpoint", str(src), "--output", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rbcore export: error:") and message in err[0]
    assert (ckpt / "weights.msgpack").read_bytes() == before
    assert not (tmp_path / "m.onnx").exists()


def test_deployment_week_on_the_onnx_engine(tmp_path, cnn):
    """The week's setting: the same candidates registered on either engine."""
    model, _ = cnn
    models = {"current": model, "vat": build_model(model_config(model), seed=3)}

    def simulate(n, *, kind, seed, night, boost, n_threads=1, config=None):
        rng = np.random.default_rng(seed)
        params = pd.DataFrame({"category": "noise", "is_real_true": 0, "detector_id": 0,
                               "x": 0.0, "y": 0.0, "mag": np.nan, "snr": 10.0, "weight": 1.0,
                               "night": night}, index=range(n))  # fmt: skip
        return cutouts(n, seed=int(rng.integers(1 << 30))), params

    rows = {}
    for engine in onnx_export.ENGINES:
        cfg = DeployConfig(n_nights=1, candidates_per_night=100, chunk_size=50, batch_size=32,
                           threshold=0.5, engine=engine)  # fmt: skip
        run_deployment(models, f"sqlite:///{tmp_path}/{engine}.sqlite", cfg, simulate=simulate,
                       progress=False)  # fmt: skip
        from rbcore.deploy.db import CandidateDB

        with CandidateDB(f"sqlite:///{tmp_path}/{engine}.sqlite") as db:
            rows[engine] = db.query("SELECT * FROM candidates ORDER BY candidate_id")
    assert 0 < len(rows["jax"]) < 100
    assert rows["onnx"]["candidate_id"].tolist() == rows["jax"]["candidate_id"].tolist()
    with pytest.raises(ValueError, match="DeployConfig.engine"):
        DeployConfig(engine="torch")


def test_engine_is_refused_with_braai(tmp_path, capsys):
    """--engine chooses how rbcore's models run; braai (--model) has its own scorer."""
    code = main(["score", "--model", "braai-d6_m7", "--weights-dir", str(tmp_path), "--engine",
                 "onnx", "--input", str(tmp_path / "a.avro"), "--output", str(tmp_path / "o.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--engine applies to --checkpoint" in err

"""Tests of `rbcore.ztf.braai`: braai's VGG6 in Flax, its input recipe, and drb reproduced.

The drb test and the CLI test on developer packets need the shared folder beside the
checkout (`../shared/data/braai`, `../shared/data/ztf_alerts`); they skip, saying so, only
when it is absent (CI runs with it present).
"""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from flax import nnx

from rbcore.ztf import braai as bz

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
WEIGHTS = SHARED / "braai"
DEV = SHARED / "ztf_alerts" / "ztf_alerts_dev.npz"
need_shared = pytest.mark.skipif(
    not (WEIGHTS / "d6_m7.weights.h5").exists() or not DEV.exists(),
    reason=f"shared braai weights or ZTF developer alerts absent under {SHARED}",
)


def test_version_decides_the_recipe():
    assert bz.parse_version("braai-d6_m9") == (6, 9) and bz.parse_version("d6_m7") == (6, 7)
    assert bz.row_wise("d6_m7") and bz.row_wise("d5_m12") and not bz.row_wise("d6_m9")
    with pytest.raises(ValueError, match="unknown braai version"):
        bz.parse_version("vgg6")
    with pytest.raises(FileNotFoundError, match="no braai d6_m7 weights"):
        bz.weights_path(Path("/nonexistent"), "d6_m7")


def test_inputs_follow_ztfs_recipe():
    rng = np.random.default_rng(0)
    x = rng.normal(100, 5, (2, 63, 63, 3)).astype(np.float32)
    x[0, 5, 7, 1] = np.nan  # masked pixel of new -> 0
    x[0, 9, :, 0] = 0.0  # a zero row of ref stays zero
    x[0, 20, 3, 0] = -3.4e38  # ZTF's blank: its row (d6_m7) / cutout (d6_m9) becomes 0
    m7 = bz.braai_inputs(x, version="d6_m7")
    m9 = bz.braai_inputs(x, version="d6_m9")
    # channel order (science, template, difference) from (ref, new, sub)
    np.testing.assert_allclose(m7[1, 3, :, 0], x[1, 3, :, 1] / np.linalg.norm(x[1, 3, :, 1]),
                               rtol=1e-6)  # fmt: skip
    norms = np.linalg.norm(m7[1], axis=1)  # every row of every channel has unit norm
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert m7[0, 5, 7, 0] == 0 and np.isfinite(m7).all()
    assert (m7[0, 9, :, 1] == 0).all() and (m7[0, 20, :, 1] == 0).all()
    assert np.linalg.norm(m7[0, 21, :, 1]) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(np.linalg.norm(m9[1], axis=(0, 1)), 1.0, rtol=1e-5)
    assert (m9[0, ..., 1] == 0).all() and np.linalg.norm(m9[0, ..., 2]) == pytest.approx(1.0)
    # the difference as distributed: a sign flipped on reading is undone
    back = bz.braai_inputs(x[:, :, :, [0, 1, 2]] * [1, 1, -1], version="d6_m9",
                           sub_flipped=[True, True])  # fmt: skip
    np.testing.assert_allclose(back[1], m9[1], rtol=1e-6)
    # a chip-edge stamp NaN-padded on its low side is cut back and padded at the end (1e-9)
    small = rng.normal(100, 5, (1, 50, 63, 3)).astype(np.float32)
    padded = np.concatenate([np.full((1, 13, 63, 3), np.nan, np.float32), small], axis=1)
    got = bz.braai_inputs(padded, version="d6_m7", padded=[True])
    want = bz.braai_inputs(small, version="d6_m7")
    np.testing.assert_array_equal(got, want)
    assert (want[0, 50:] == np.float32(bz.PAD_VALUE)).all()
    with pytest.raises(ValueError, match="inf"):
        bz.braai_inputs(np.full((1, 63, 63, 3), np.inf, np.float32), version="d6_m7")


def _numpy_vgg6(model, x):
    """Plain NumPy forward pass of VGG6 (valid convolutions, floor max-pool)."""

    def conv(a, layer):
        k, b = np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])
        h, w = a.shape[1] - 2, a.shape[2] - 2
        out = sum(
            np.einsum("nhwc,cd->nhwd", a[:, i : i + h, j : j + w], k[i, j])
            for i in range(3)
            for j in range(3)
        )
        return np.maximum(out + b, 0)

    def pool(a, p):
        n, h, w, c = a.shape
        a = a[:, : h // p * p, : w // p * p].reshape(n, h // p, p, w // p, p, c)
        return a.max(axis=(2, 4))

    a = pool(conv(conv(x, model.conv1), model.conv2), 2)
    a = pool(conv(conv(a, model.conv3), model.conv4), 4).reshape(len(x), -1)
    a = np.maximum(a @ np.asarray(model.fc_1.kernel[...]) + np.asarray(model.fc_1.bias[...]), 0)
    return (a @ np.asarray(model.fc_out.kernel[...]) + np.asarray(model.fc_out.bias[...]))[:, 0]


def test_vgg6_is_the_published_architecture():
    model = bz.VGG6(rngs=nnx.Rngs(3))
    n_params = sum(p.size for p in jax_leaves(model))
    # 448 + 2320 + 4640 + 9248 + 295168 + 257 (braai's Keras summary of VGG6)
    assert n_params == 312_081
    x = np.random.default_rng(1).normal(0, 0.2, (3, 63, 63, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), _numpy_vgg6(model, x),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    bz_model = bz.Braai(model, "d6_m7", Path("x"))
    np.testing.assert_allclose(bz.braai_logits(bz_model, x, batch_size=2),
                               _numpy_vgg6(model, x), rtol=1e-4, atol=1e-5)  # fmt: skip


def jax_leaves(model):
    import jax

    return jax.tree.leaves(nnx.state(model, nnx.Param))


@need_shared
def test_braai_reproduces_drb_on_the_developer_alerts():
    with np.load(DEV, allow_pickle=False) as d:
        images, drb, padded = d["images"], d["drb"].astype(np.float64), d["padded"]
    m7 = bz.load_braai("d6_m7", WEIGHTS)
    assert m7.row_wise and m7.version == "d6_m7"
    score = bz.braai_scores(m7, images, padded=padded)
    has = np.isfinite(drb)
    close = np.abs(score[has] - drb[has]) < 1e-4
    assert has.sum() > 700 and close.mean() >= 0.99, (close.sum(), has.sum())
    # d6_m9 is another model with the whole-cutout recipe: close to drb in rank, not equal
    m9 = bz.load_braai("braai-d6_m9", WEIGHTS)
    s9 = bz.braai_scores(m9, images[has][:100])
    assert not m9.row_wise and np.abs(s9 - drb[has][:100]).max() > 1e-3
    assert np.mean((s9 >= 0.5) == (drb[has][:100] >= 0.5)) > 0.8


@need_shared
def test_score_command_runs_braai_on_packets(tmp_path, capsys):
    from test_ztf_packets import dev_packet, write_avro

    from rbcore.cli import main

    with np.load(DEV, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    # the blank-template alert (drb from an all-zero template), two 'f' alerts, two others
    pick = [558, *np.flatnonzero((d["isdiffpos"] == "f") & np.isfinite(d["drb"]))[:2], 10, 20]
    write_avro(tmp_path / "a.avro", [dev_packet(d, i) for i in pick])
    base = ["score", "--input", str(tmp_path / "a.avro"), "--weights-dir", str(WEIGHTS)]
    out = tmp_path / "s.csv"
    assert main([*base, "--model", "braai-d6_m7", "--output", str(out)]) == 0
    got = pd.read_csv(out, dtype={"candid": str})
    assert list(got.columns) == ["row", "candid", "objectId", "logit", "score"]
    assert got["candid"].tolist() == [str(d["ids"][i]) for i in pick]
    want = d["drb"][pick].astype(float)
    ok = np.isfinite(want)
    np.testing.assert_allclose(got["score"][ok], want[ok], atol=1e-4)
    assert main([*base, "--model", "braai-d6_m9", "--output", str(tmp_path / "m9.csv")]) == 0
    assert not np.allclose(pd.read_csv(tmp_path / "m9.csv")["score"], got["score"], atol=1e-3)
    capsys.readouterr()
    # bad use: one line, status 2, no output
    bad = tmp_path / "bad.csv"
    assert main(["score", "--input", str(tmp_path / "a.avro"), "--model", "braai-d6_m7",
                 "--output", str(bad)]) == 2  # fmt: skip
    assert "--weights-dir" in capsys.readouterr().err
    assert main([*base, "--model", "braai-d6_m7", "--checkpoint", "c", "--output", str(bad)]) == 2
    assert "exactly one of --checkpoint and --model" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((1, 29, 29, 3), np.float32))
    base[2] = str(tmp_path / "x.npy")
    assert main([*base, "--model", "braai-d6_m7", "--output", str(bad)]) == 2
    assert "braai scores ZTF alert packets" in capsys.readouterr().err
    assert not bad.exists()

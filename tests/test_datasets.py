"""Tests of the data layer (rbcore.datasets): lazy loading, validation, FITS, augmentation."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest

from rbcore.datasets import (
    LazyImages,
    Subset,
    count_nan_pixels,
    detector_validation_split,
    dihedral_augment,
    dihedral_inverse,
    dihedral_transform,
    load_test,
    load_training,
)
from rbcore.simulation import write_test_set, write_training_set


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    write_training_set(root / "train", 240, seed=3, n_detectors=3)
    write_test_set(root / "test", 6, 50, seed=4)
    return root


def _copy(sim_dir, tmp_path):
    dst = tmp_path / "train"
    shutil.copytree(sim_dir / "train", dst)
    return dst


def _zenodo_like(tmp_path, n=(4, 6), ids=(7, 2)):
    """Files as the published data: no truth columns, arbitrary detector ids."""
    rng = np.random.default_rng(0)
    for d, k in zip(ids, n, strict=True):
        np.save(tmp_path / f"images{d}.npy", rng.normal(size=(k, 29, 29, 3)).astype(np.float32))
        pd.DataFrame(
            {
                "object_type": rng.choice(
                    ["artifact", "rand_artificial_real", "galx_artificial_real"], k
                )
            }
        ).to_csv(tmp_path / f"params{d}.csv", index=False)
    return tmp_path


def test_load_training_simulated(sim_dir):
    ts = load_training(sim_dir / "train")
    assert len(ts) == len(ts.images) == 240 and ts.has_truth
    assert list(ts.params["id"]) == list(range(240))
    assert list(ts.params["detector_id"].unique()) == [0, 1, 2]
    assert set(ts.labels) == {0, 1}
    assert ((ts.params["object_type"] == "artifact") == (ts.labels == 0)).all()
    assert isinstance(ts.images, LazyImages)
    assert all(isinstance(a, np.memmap) for a in ts.images.arrays)


def test_lazy_fancy_indexing_order(sim_dir):
    ts = load_training(sim_dir / "train")
    full = np.concatenate([np.load(sim_dir / "train" / f"images{d}.npy") for d in range(3)])
    idx = np.array([239, 0, 81, 80, 79, 5, 5, 160])  # unsorted, across files, repeated
    got = ts.images[idx]
    assert got.shape == (8, 29, 29, 3) and got.dtype == np.float32
    assert np.array_equal(got, full[idx], equal_nan=True)
    assert np.array_equal(ts.images[-1], full[-1], equal_nan=True)
    assert np.array_equal(ts.images[10:13], full[10:13], equal_nan=True)
    mask = np.zeros(240, bool)
    mask[[3, 100]] = True
    assert np.array_equal(ts.images[mask], full[mask], equal_nan=True)
    with pytest.raises(IndexError):
        ts.images[np.array([240])]


def test_nan_counted_not_changed(sim_dir):
    path = sim_dir / "train" / "images0.npy"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    ts = load_training(sim_dir / "train")
    n_nan = count_nan_pixels(ts.images)
    full = np.concatenate([np.load(sim_dir / "train" / f"images{d}.npy") for d in range(3)])
    assert n_nan == int(np.isnan(full).sum())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_zenodo_layout_without_truth(tmp_path):
    ts = load_training(_zenodo_like(tmp_path))
    assert not ts.has_truth
    assert list(ts.params["detector_id"]) == [2] * 6 + [7] * 4  # ascending detector ids
    assert len(ts.images) == 10


@pytest.mark.parametrize(
    "breakage, error, match",
    [
        (
            lambda d: (d / "params1.csv").unlink(),
            FileNotFoundError,
            r"images1\.npy has no matching",
        ),
        (
            lambda d: (d / "images2.npy").unlink(),
            FileNotFoundError,
            r"params2\.csv has no matching",
        ),
        (
            lambda d: (
                pd.read_csv(d / "params0.csv").iloc[:-1].to_csv(d / "params0.csv", index=False)
            ),
            ValueError,
            r"params0\.csv has 79 rows",
        ),
        (
            lambda d: np.save(d / "images1.npy", np.zeros((80, 28, 29, 3), np.float32)),
            ValueError,
            r"images1\.npy: expected images of shape",
        ),
        (
            lambda d: np.save(d / "images1.npy", np.zeros((80, 29, 29, 3), np.float64)),
            ValueError,
            r"images1\.npy: expected dtype float32",
        ),
        (
            lambda d: (
                pd.read_csv(d / "params2.csv")
                .assign(object_type="alien")
                .to_csv(d / "params2.csv", index=False)
            ),
            ValueError,
            r"params2\.csv: unknown object_type \['alien'\]",
        ),
        (
            lambda d: (
                pd.read_csv(d / "params1.csv")
                .drop(columns="object_type")
                .to_csv(d / "params1.csv", index=False)
            ),
            ValueError,
            r"params1\.csv: missing column 'object_type'",
        ),
    ],
)
def test_validation_errors(sim_dir, tmp_path, breakage, error, match):
    d = _copy(sim_dir, tmp_path)
    breakage(d)
    with pytest.raises(error, match=match):
        load_training(d)


def test_missing_folder_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_training(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no images"):
        load_training(tmp_path)


def test_load_test(sim_dir, tmp_path):
    te = load_test(sim_dir / "test")
    assert len(te) == 56 and te.labels[:6].sum() == 6 and te.labels[6:].sum() == 0
    assert te.has_truth and (te.params["label_is_wrong"] == 0).all()
    real = np.load(sim_dir / "test" / "test_real.npy")
    assert np.array_equal(te.images[np.arange(6)], real, equal_nan=True)
    # without the params files (the Zenodo test data), and with other names
    shutil.copy(sim_dir / "test" / "test_real.npy", tmp_path / "r.npy")
    shutil.copy(sim_dir / "test" / "test_bogus.npy", tmp_path / "b.npy")
    te2 = load_test(tmp_path, real_name="r.npy", bogus_name="b.npy")
    assert not te2.has_truth and len(te2) == 56
    with pytest.raises(FileNotFoundError, match="x.npy"):
        load_test(tmp_path, real_name="x.npy", bogus_name="b.npy")


def test_dihedral_group():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 29, 29, 3)).astype(np.float32)
    outs = [dihedral_transform(x, k) for k in range(8)]
    flat = {o.tobytes() for o in outs}
    assert len(flat) == 8  # 8 distinct transforms
    for k in range(8):
        assert np.array_equal(dihedral_inverse(outs[k], k), x)
        assert np.array_equal(np.sort(outs[k], axis=None), np.sort(x, axis=None))
    batch = rng.normal(size=(64, 29, 29, 3)).astype(np.float32)
    a = dihedral_augment(batch, np.random.default_rng(5))
    b = dihedral_augment(batch, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, batch)
    # channels move together: the centre pixel of every channel is kept
    np.testing.assert_array_equal(a[:, 14, 14, :], batch[:, 14, 14, :])


def test_summary_and_examples(sim_dir):
    from rbcore.summary import dataset_summary, examples_per_group

    ts, te = load_training(sim_dir / "train"), load_test(sim_dir / "test")
    s = dataset_summary(ts, te)
    assert s["train"]["n"] == 240 and s["test"]["n_real"] == 6 and s["test"]["n_bogus"] == 50
    assert s["train"]["n_label_real"] + s["train"]["n_label_bogus"] == 240
    assert sum(s["train"]["category_by_label"].values()) == 240
    assert s["train"]["n_wrong_real"] == int(ts.params.loc[ts.labels == 1, "label_is_wrong"].sum())
    picks = examples_per_group(ts.params, "category", 2, seed=1)
    assert set(picks) == set(ts.params["category"])
    for cat, rows in picks.items():
        assert 1 <= len(rows) <= 2 and (ts.params["category"].to_numpy()[rows] == cat).all()
    again = examples_per_group(ts.params, "category", 2, seed=1)
    assert all(np.array_equal(picks[k], again[k]) for k in picks)


def test_detector_validation_split():
    det = np.repeat(np.arange(10), 50)
    labels = np.tile([0, 1], 250)
    tr, va = detector_validation_split(det, labels, fraction=0.2, seed=3)
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(500))
    assert not set(det[tr]) & set(det[va]) and len(va) >= 100
    tr2, va2 = detector_validation_split(det, labels, fraction=0.2, seed=3)
    assert np.array_equal(va, va2)
    with pytest.raises(ValueError, match="one class"):
        detector_validation_split(det, (det == 0).astype(int), fraction=0.3, seed=0)


def test_subset_view_indexes_like_the_array():
    x = np.arange(10 * 2 * 2 * 3, dtype=np.float32).reshape(10, 2, 2, 3)
    sub = Subset(x, np.array([7, 2, 5, 9]))
    assert len(sub) == 4 and sub.shape == (4, 2, 2, 3)
    np.testing.assert_array_equal(sub[np.array([3, 0, 1])], x[[9, 7, 2]])


# ---------------------------------------------------------------- bad files, one clear line
def _csv(d, name, edit):
    path = d / name
    edit(pd.read_csv(path)).to_csv(path, index=False)


@pytest.mark.parametrize(
    "breakage, match",
    [
        (lambda d: (d / "images1.npy").write_bytes(b""), r"images1\.npy: empty file \(0 bytes\)"),
        (lambda d: (d / "params0.csv").write_text(""), r"params0\.csv: empty file"),
        (
            lambda d: (d / "params0.csv").write_text("object_type,mag\nartifact,1\nartifact,2,3\n"),
            r"params0\.csv: not a readable CSV table .*Expected 2 fields in line 3",
        ),
        (
            lambda d: _csv(d, "params2.csv", lambda t: t.assign(id=range(len(t)))),
            r"params2\.csv: has a column 'id'",
        ),
        (
            lambda d: _csv(d, "params1.csv", lambda t: t.assign(mag=["x"] + list(t["mag"][1:]))),
            r"params1\.csv: column 'mag' must be numeric, row 0 holds 'x'",
        ),
        (
            lambda d: _csv(d, "params2.csv", lambda t: t.drop(columns="snr")),
            r"params2\.csv: missing truth columns \['snr'\]",
        ),
        (
            lambda d: shutil.copy(d / "images1.npy", d / "images01.npy"),
            r"images01\.npy and .*images1\.npy both name detector 1",
        ),
    ],
)
def test_bad_files_give_one_error_naming_the_file(sim_dir, tmp_path, breakage, match):
    d = _copy(sim_dir, tmp_path)
    breakage(d)
    with pytest.raises(ValueError, match=match):
        load_training(d)


def test_upper_case_npy_is_paired_with_its_params(tmp_path):
    d = _zenodo_like(tmp_path)
    (d / "images7.npy").rename(d / "images7.NPY")
    ts = load_training(d)
    assert len(ts) == 10 and list(ts.params["detector_id"]) == [2] * 6 + [7] * 4


def test_test_set_truth_in_one_file_only_is_an_error(sim_dir, tmp_path):
    d = tmp_path / "test"
    shutil.copytree(sim_dir / "test", d)
    (d / "test_bogus_params.csv").unlink()
    with pytest.raises(ValueError, match=r"test_bogus_params\.csv \(no such file\): missing"):
        load_test(d)

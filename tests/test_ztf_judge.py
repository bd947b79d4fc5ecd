"""Tests of `rbcore.ztf.judge`: braai's verdicts on the simulated survey, summarized."""

import numpy as np
import pandas as pd
import pytest

from rbcore.ztf import judge


def test_braai_on_simulation_counts_per_category_and_overall():
    table = pd.DataFrame(
        {
            "category": ["noise", "noise", "noise", "variable_star", "variable_star", "rand"],
            "is_real_true": [0, 0, 0, 1, 1, 0],  # an unmatched injection is bogus
        }
    )
    scores = np.array([0.9, 0.2, 0.5, 0.1, 0.8, 0.7])
    out = judge.braai_on_simulation(scores, table)
    assert out["noise"] == {"n": 3, "mean_score": pytest.approx(1.6 / 3),
                            "pass_rate": pytest.approx(2 / 3), "truth_real": 0.0}  # fmt: skip
    assert out["variable_star"]["pass_rate"] == 0.5 and out["rand"]["truth_real"] == 0.0
    assert out["fnr"] == 0.5 and out["fpr"] == 0.75  # 3 of 4 bogus reach 0.5 (0.5 passes)
    assert (out["n_real"], out["n_bogus"]) == (2, 4)
    frame = judge.category_table(out)
    assert list(frame.index[:2]) == ["rand", "noise"]  # bogus first, most passed first
    with pytest.raises(ValueError, match="finite"):
        judge.braai_on_simulation(np.array([np.nan] * 6), table)


def test_strongest_misses_both_ways():
    s = np.array([0.1, 0.9, 0.45, 0.99, 0.6, 0.3])
    truth = np.array([1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(judge.strongest_misses(s, truth, real=True, k=5), [0, 2])
    np.testing.assert_array_equal(judge.strongest_misses(s, truth, real=False, k=2), [3, 1])


def test_the_simulation_renders_on_braais_grid():
    from rbcore.ztf.simulated import simulate_ztf_stamps

    stamps, table = judge.simulate_for_braai(40, seed=3)
    assert stamps.shape == (40, 63, 63, 3) and len(table) == 40
    assert set(table["is_real_true"]) <= {0, 1} and "category" in table
    again, table2 = simulate_ztf_stamps(40, seed=3, stamp_size=63)
    np.testing.assert_array_equal(stamps, again)  # seeded
    # the classes found on ref - sci reach the judge with ZTF's labels (real / bogus)
    _, many = judge.simulate_for_braai(300, seed=3)
    out = judge.braai_on_simulation(np.full(len(many), 0.7), many)
    assert out["variable_fading"]["truth_real"] == 1.0 and out["negative_dip"]["truth_real"] == 0
    assert out["negative_dip"]["pass_rate"] == 1.0 and out["fpr"] == 1.0
    small, _ = simulate_ztf_stamps(40, seed=3)
    assert small.shape == (40, 35, 35, 3)  # the preset's stamp for the model grid
    # the same survey: the sky level of new does not depend on the stamp size
    sky = lambda x: np.nanmedian(x[..., 1], axis=(1, 2))  # noqa: E731
    assert np.median(sky(stamps)) == pytest.approx(np.median(sky(small)), rel=0.1)

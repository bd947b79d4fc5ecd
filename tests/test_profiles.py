"""Tests of rbcore.profiles: one table, one accessor, None keeps the profile's value."""

import pytest

from rbcore.profiles import PROFILE_NAMES, PROFILES, STEPS, settings


def test_every_profile_has_every_step():
    assert tuple(PROFILES) == PROFILE_NAMES == ("smoke", "default", "paper")
    for name in PROFILE_NAMES:
        assert set(PROFILES[name]) == set(STEPS), name


def test_profiles_grow_from_smoke_to_paper():
    sizes = [settings(p, "survey") for p in PROFILE_NAMES]
    for key in ("n_train", "n_test_real", "n_test_bogus"):
        assert sizes[0][key] < sizes[1][key] < sizes[2][key], key
    assert settings("default", "survey")["n_detectors"] == 84  # Tomo-e's detectors


def test_overrides_and_none():
    assert settings("smoke", "evaluation", n_boot=None) == {"n_boot": 200}
    assert settings("smoke", "evaluation", n_boot=7) == {"n_boot": 7}
    got = settings("default", "train", epochs=None, seed=3)
    assert got["epochs"] == PROFILES["default"]["train"]["epochs"] and got["seed"] == 3
    got["epochs"] = -1  # a copy: the table is not changed through it
    assert PROFILES["default"]["train"]["epochs"] > 0


def test_unknown_profile_or_step_is_an_error():
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        settings("huge", "train")
    with pytest.raises(ValueError, match="unknown step 'trian'"):
        settings("smoke", "trian")

"""The county's rollout rules (pure): who gets which version, stable by device id."""

from __future__ import annotations

import pytest

from hub_sync.core.errors import FormatError
from hub_sync.formats.firmware_rollout import (Rules, bucket, load_rules, rules_bytes, set_paused, stage_release,
                                               version_for, widen)

DEVICES = [f"dev-{i:04d}" for i in range(2000)]


def _share(rules: Rules, version: str, school: str = "S01") -> float:
    return sum(version_for(d, school, rules) == version for d in DEVICES) / len(DEVICES)


def test_nothing_published_means_no_version():
    assert version_for("dev-1", "S01", Rules()) is None


def test_release_to_everyone_is_the_default():
    rules = stage_release(Rules(), "1.0.0")
    assert rules.default == "1.0.0" and rules.stages == ()
    assert all(version_for(d, "S09", rules) == "1.0.0" for d in DEVICES[:50])


def test_percentage_is_about_right_and_stable_when_widened():
    rules = stage_release(stage_release(Rules(), "1.0.0"), "1.1.0", percent=10)
    assert 0.07 < _share(rules, "1.1.0") < 0.13
    first = {d for d in DEVICES if version_for(d, "S01", rules) == "1.1.0"}
    wider = widen(rules, percent=30)
    second = {d for d in DEVICES if version_for(d, "S01", wider) == "1.1.0"}
    assert first < second and 0.26 < len(second) / len(DEVICES) < 0.34
    assert {d for d in DEVICES if bucket(d) < 10} == first  # the bucket alone decides


def test_school_list_picks_every_device_of_those_schools_only():
    rules = stage_release(stage_release(Rules(), "1.0.0"), "1.1.0", schools=["S01", "S02"])
    assert version_for("dev-1", "S01", rules) == "1.1.0"
    assert version_for("dev-2", "S02", rules) == "1.1.0"
    assert version_for("dev-3", "S03", rules) == "1.0.0"
    assert rules.schools_for("1.1.0") == ["S01", "S02"]
    assert rules.schools_for("1.0.0") is None
    wider = widen(rules, schools=["S03"])
    assert version_for("dev-3", "S03", wider) == "1.1.0"


def test_widen_to_everyone_makes_the_default_and_drops_the_stage():
    rules = stage_release(stage_release(Rules(), "1.0.0"), "1.1.0", percent=5)
    done = widen(rules, percent=100)
    assert done.default == "1.1.0" and done.stages == ()


def test_pause_stops_every_device_and_resume_restores():
    rules = stage_release(Rules(), "1.0.0")
    paused = set_paused(rules, True)
    assert version_for("dev-1", "S01", paused) is None
    assert version_for("dev-1", "S01", set_paused(paused, False)) == "1.0.0"


def test_widen_refuses_to_narrow_and_needs_a_stage():
    rules = stage_release(stage_release(Rules(), "1.0.0"), "1.1.0", percent=20)
    with pytest.raises(FormatError, match="only widens"):
        widen(rules, percent=10)
    with pytest.raises(FormatError, match="no staged release"):
        widen(stage_release(Rules(), "1.0.0"), percent=50)
    with pytest.raises(FormatError, match="not a staged release"):
        widen(rules, version="9.9.9", percent=50)


def test_bad_inputs_are_refused():
    for kwargs in ({"percent": 101}, {"percent": -1}, {"schools": ["../x"]}):
        with pytest.raises(FormatError):
            stage_release(Rules(), "1.0.0", **kwargs)
    with pytest.raises(FormatError, match="invalid version"):
        stage_release(Rules(), "not a version")


def test_bytes_round_trip_and_malformed_refused():
    rules = set_paused(stage_release(stage_release(Rules(), "1.0.0"), "1.1.0", schools=["S01"], percent=3), True)
    assert load_rules(rules_bytes(rules)) == rules
    for bad in (b"", b"[]", b'{"format": 2, "paused": false}', b'{"format": 1, "paused": false, "default": "x y"}',
                b'{"format": 1, "paused": false, "stages": [{"version": "1.0", "percent": 500}]}'):
        with pytest.raises(FormatError, match="rollout.json is malformed"):
            load_rules(bad)

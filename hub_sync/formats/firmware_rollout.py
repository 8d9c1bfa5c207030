"""The county's rollout rules for appliance software (pure: no I/O).

The hub publishes the rules as the TUF target ``firmware/rollout.json`` of the
delegated role ``firmware``; each appliance reads them and computes the one
version meant for it with ``version_for``::

    {"format": 1,
     "paused": false,                 # true: no appliance starts a new update
     "default": "1.2.0" | null,       # every appliance no stage picks
     "stages": [                      # staged releases, oldest first; the last match wins
        {"version": "1.3.0", "schools": ["S01", "S02"], "percent": 10}]}

A stage picks an appliance when its school is listed or when the appliance's
bucket (``bucket(device_id)``, 0-99 from sha256 of the device id) is below the
stage's percentage. The bucket does not depend on the version, so widening from
10 to 30 percent keeps the first 10 percent in (a device never flips back), and
the same few devices are the county's first ones for every release.

Widening raises a stage's percentage or adds schools, never lowers them; a
stage widened to everyone becomes the default. Pausing stops every appliance
from starting an update (the ones already installed stay).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace

from packaging.version import InvalidVersion, Version

from hub_sync.core.errors import FormatError
from hub_sync.formats.envelope import canonical_json

FORMAT = 1
ROLLOUT_TARGET = "firmware/rollout.json"
SCHOOL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
BUCKETS = 100


def check_version(version: str) -> str:
    """Refuse a version that is not a PEP 440 version (it names a TUF path too)."""
    try:
        Version(version)
    except (InvalidVersion, TypeError) as exc:
        raise FormatError(f"版本号 {version!r} 无效", f"invalid version {version!r}") from exc
    if not re.match(r"^[0-9A-Za-z.+-]{1,40}$", version):
        raise FormatError(f"版本号 {version!r} 无效", f"invalid version {version!r}")
    return version


def bucket(device_id: str) -> int:
    """The device's stable bucket, 0..99: sha256 of its id, so the same devices come first."""
    return int.from_bytes(hashlib.sha256(device_id.encode("utf-8")).digest()[:8], "big") % BUCKETS


@dataclass(frozen=True)
class Stage:
    """One staged release: these schools, plus this percentage of all devices."""

    version: str
    schools: tuple[str, ...] = ()
    percent: int = 0

    def picks(self, device_id: str, school_code: str) -> bool:
        return school_code in self.schools or bucket(device_id) < self.percent

    def everyone(self) -> bool:
        return self.percent >= BUCKETS


@dataclass(frozen=True)
class Rules:
    """The rollout rules as published (see the module docstring)."""

    default: str | None = None
    stages: tuple[Stage, ...] = field(default_factory=tuple)
    paused: bool = False

    def stage(self, version: str) -> Stage | None:
        return next((s for s in self.stages if s.version == version), None)

    def versions(self) -> set[str]:
        """Every version the rules may hand out."""
        return {s.version for s in self.stages} | ({self.default} if self.default else set())

    def schools_for(self, version: str) -> list[str] | None:
        """Who a release of ``version`` is for, as its signature says: a list of schools
        for a stage that picks by school only, else None (any school of the county)."""
        stage = self.stage(version)
        if stage is None or stage.percent > 0 or version == self.default:
            return None
        return sorted(stage.schools)


def version_for(device_id: str, school_code: str, rules: Rules) -> str | None:
    """The version meant for one appliance, or None (paused, or nothing published).

    The last stage that picks the device wins; otherwise the default."""
    if rules.paused:
        return None
    for stage in reversed(rules.stages):
        if stage.picks(device_id, school_code):
            return stage.version
    return rules.default


def _check_schools(schools) -> tuple[str, ...]:
    if not isinstance(schools, (list, tuple)) or not all(isinstance(s, str) and SCHOOL_CODE.match(s) for s in schools):
        raise FormatError("学校代码列表无效", f"invalid list of school codes: {schools!r}")
    return tuple(sorted(set(schools)))


def _check_percent(percent) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= BUCKETS:
        raise FormatError(f"百分比 {percent!r} 无效，应为 0 到 100", f"invalid percentage {percent!r}: use 0 to 100")
    return percent


def stage_release(rules: Rules, version: str, schools: list[str] | None = None, percent: int | None = None) -> Rules:
    """Rules with ``version`` released: to everyone (no schools, no percent: the new
    default), or as a stage for these schools and/or this percentage (replacing an
    earlier stage of the same version)."""
    check_version(version)
    if not schools and percent is None:
        return _make_default(rules, version)
    stage = Stage(version, _check_schools(schools or []), _check_percent(percent or 0))
    if stage.everyone():
        return _make_default(rules, version)
    kept = tuple(s for s in rules.stages if s.version != version)
    return replace(rules, stages=kept + (stage,))


def widen(rules: Rules, version: str | None = None, schools: list[str] | None = None,
          percent: int | None = None) -> Rules:
    """Rules with a stage (the newest when ``version`` is None) given more schools
    and/or a higher percentage; to 100 percent it becomes the default. A lower
    percentage is refused: devices already updated would not go back anyway."""
    if not rules.stages:
        raise FormatError("没有正在分批发布的版本", "no staged release to widen")
    stage = rules.stage(version) if version else rules.stages[-1]
    if stage is None:
        raise FormatError(f"版本 {version} 不在分批发布中", f"version {version} is not a staged release")
    new_percent = stage.percent if percent is None else _check_percent(percent)
    if new_percent < stage.percent:
        raise FormatError(f"只能扩大范围：{stage.version} 已在 {stage.percent}% 的设备上",
                          f"a rollout only widens: {stage.version} is already at {stage.percent}%")
    widened = Stage(stage.version, _check_schools(list(stage.schools) + list(schools or [])), new_percent)
    if widened.everyone():
        return _make_default(rules, stage.version)
    return replace(rules, stages=tuple(widened if s.version == stage.version else s for s in rules.stages))


def _make_default(rules: Rules, version: str) -> Rules:
    """``version`` for everyone; stages of versions up to it are done and dropped."""
    v = Version(version)
    return replace(rules, default=version, stages=tuple(s for s in rules.stages if Version(s.version) > v))


def set_paused(rules: Rules, paused: bool) -> Rules:
    return replace(rules, paused=paused)


def rules_bytes(rules: Rules) -> bytes:
    """The canonical JSON of the rules (what ``firmware/rollout.json`` holds)."""
    return canonical_json({"format": FORMAT, "paused": rules.paused, "default": rules.default,
                           "stages": [{"version": s.version, "schools": list(s.schools), "percent": s.percent}
                                      for s in rules.stages]})


def load_rules(data: bytes) -> Rules:
    """Parse ``rules_bytes`` output; FormatError on anything else."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("paused"), bool):
            raise ValueError("not rollout rules")
        default = raw.get("default")
        if default is not None:
            check_version(default)
        stages = []
        for s in raw.get("stages") or []:
            stages.append(Stage(check_version(s["version"]), _check_schools(s.get("schools", [])),
                                _check_percent(s.get("percent", 0))))
        return Rules(default, tuple(stages), raw["paused"])
    except (ValueError, KeyError, TypeError, AttributeError, FormatError) as exc:
        raise FormatError("发布规则 rollout.json 格式无效，已拒收", f"rollout.json is malformed: {exc}; refused") from exc


def describe(rules: Rules) -> list[str]:
    """Lines a technician reads (``hub firmware status``)."""
    lines = [f"{'已暂停 PAUSED' if rules.paused else '进行中 active'}; "
             f"默认版本 default: {rules.default or '-'}"]
    for s in rules.stages:
        scope = []
        if s.schools:
            scope.append("学校 schools " + ",".join(s.schools))
        if s.percent:
            scope.append(f"{s.percent}% 的设备 of devices")
        lines.append(f"分批 staged {s.version}: " + ("; ".join(scope) or "尚无设备 no device yet"))
    return lines

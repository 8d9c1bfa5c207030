"""The roster on a stick is encrypted: Argon2id + AES-256-GCM, bound to its school."""

import json

import pytest

from provisioning.roster_seal import MAX_MEMORY_KIB, open_roster, seal_roster, sealed_school
from fixtures.common import SCHOOL
from provisioning.errors import RosterError, WrongPassphraseError, WrongSchoolError

ROSTER = "姓名,学籍号,性别,年级,班级,角色\r\n张三,G110101201501011234,男,一年级,一年级1班,学生\r\n".encode("gb18030")
FAST = {"time_cost": 1, "memory_kib": 1024}  # tests only: the default is 64 MiB, 3 passes


def test_sealed_roster_opens_with_the_passphrase_and_keeps_the_exact_bytes():
    sealed = seal_roster(ROSTER, "correct horse battery", SCHOOL, **FAST)
    assert open_roster(sealed, "correct horse battery", SCHOOL) == ROSTER
    assert sealed_school(sealed) == SCHOOL


def test_sealed_roster_reveals_no_personal_data():
    sealed = seal_roster(ROSTER, "correct horse battery", SCHOOL, **FAST)
    assert "张三".encode("gb18030") not in sealed and b"G110101201501011234" not in sealed
    doc = json.loads(sealed)
    assert doc["kdf"]["name"] == "argon2id" and doc["aead"] == "AES-256-GCM" and len(doc["kdf"]["salt"]) > 16


def test_default_kdf_is_memory_hard():
    doc = json.loads(seal_roster(b"x", "correct horse battery", SCHOOL))
    assert doc["kdf"]["memory_kib"] >= 64 * 1024 and doc["kdf"]["time_cost"] >= 3


def test_wrong_passphrase_is_refused_with_a_clear_message():
    sealed = seal_roster(ROSTER, "correct horse battery", SCHOOL, **FAST)
    with pytest.raises(WrongPassphraseError) as err:
        open_roster(sealed, "wrong horse battery", SCHOOL)
    assert "口令错误" in str(err.value) and "wrong passphrase" in str(err.value)


def test_roster_of_another_school_is_refused():
    sealed = seal_roster(ROSTER, "correct horse battery", SCHOOL, **FAST)
    with pytest.raises(WrongSchoolError):
        open_roster(sealed, "correct horse battery", "4309999999")


def test_relabelling_a_roster_for_another_school_breaks_it():
    doc = json.loads(seal_roster(ROSTER, "correct horse battery", SCHOOL, **FAST))
    doc["school_code"] = "4309999999"  # moved to another school's stick
    with pytest.raises(WrongPassphraseError):
        open_roster(json.dumps(doc).encode(), "correct horse battery", "4309999999")


def test_changed_ciphertext_is_refused():
    doc = json.loads(seal_roster(ROSTER, "correct horse battery", SCHOOL, **FAST))
    doc["ciphertext"] = doc["ciphertext"][:-8] + ("A" * 8 if not doc["ciphertext"].endswith("A" * 8) else "B" * 8)
    with pytest.raises((WrongPassphraseError, RosterError)):
        open_roster(json.dumps(doc).encode(), "correct horse battery", SCHOOL)


def test_header_asking_for_absurd_kdf_work_is_refused_before_any_work():
    doc = json.loads(seal_roster(ROSTER, "correct horse battery", SCHOOL, **FAST))
    doc["kdf"]["memory_kib"] = MAX_MEMORY_KIB * 64
    with pytest.raises(RosterError):
        open_roster(json.dumps(doc).encode(), "correct horse battery", SCHOOL)


@pytest.mark.parametrize("garbage", [b"", b"not json", b"{}", b'{"format": "school-edge-roster/1"}', b"[1,2]"])
def test_garbage_is_not_a_sealed_roster(garbage):
    with pytest.raises(RosterError):
        open_roster(garbage, "correct horse battery", SCHOOL)


def test_short_passphrase_is_refused():
    with pytest.raises(RosterError):
        seal_roster(ROSTER, "short", SCHOOL, **FAST)

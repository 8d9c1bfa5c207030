"""Journal -> xAPI statements, and ``school-edge edge export-xapi``."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner

from edge_agent.cli import main
from hub_sync.formats.usage_batch import UsageEvent
from hub_sync.formats.xapi import STATEMENT_ID_NAMESPACE, VERB_IRIS, statement, statements


def test_answer_becomes_a_statement_with_adl_verb_account_actor_and_result():
    ev = UsageEvent(7, 1_760_000_000.5, "stu-4401020301-0101", "answered", "res-sx-g3-u2-ex",
                    {"item": "q3", "correct": True, "answer": "B"})
    st = statement(ev, "edge-a", "4401020301")
    assert st["verb"]["id"] == "http://adlnet.gov/expapi/verbs/answered"
    assert st["actor"]["account"] == {"homePage": "https://w3id.org/school-edge/xapi/schools/4401020301", "name": "stu-4401020301-0101"}
    assert st["object"] == {"objectType": "Activity", "id": "https://w3id.org/school-edge/xapi/resources/res-sx-g3-u2-ex"}
    assert st["result"]["success"] is True and st["result"]["response"] == "B"
    assert st["result"]["extensions"]["https://w3id.org/school-edge/xapi/extensions/data"] == {"item": "q3"}
    assert st["timestamp"] == "2025-10-09T08:53:20.500Z"
    assert st["context"]["extensions"]["https://w3id.org/school-edge/xapi/extensions/seq"] == 7


def test_completion_progress_score_and_duration_map_to_result_fields():
    done = statement(UsageEvent(1, 0.0, "s", "completed", "r", {"s": 540}), "d", "c")
    assert done["verb"]["id"] == "http://adlnet.gov/expapi/verbs/completed"
    assert done["result"] == {"duration": "PT540S", "completion": True}
    assert done["timestamp"] == "1970-01-01T00:00:00.000Z"      # a wrong clock is exported as it was
    prog = statement(UsageEvent(2, 0.0, "s", "progressed", "r", {"pct": 80}), "d", "c")
    assert prog["result"]["extensions"]["https://w3id.org/xapi/cmi5/result/extensions/progress"] == 80
    sub = statement(UsageEvent(3, 0.0, "s", "submitted", "r", {"score": 90}), "d", "c")
    assert sub["result"]["score"] == {"raw": 90}
    odd = statement(UsageEvent(4, 0.0, "s", "messaged", "r", {}), "d", "c")
    assert odd["verb"]["id"] == "https://w3id.org/school-edge/xapi/verbs/messaged" and "result" not in odd


def test_statement_ids_are_stable_per_device_and_seq():
    ev = UsageEvent(9, 1.0, "s", "viewed", "r", {})
    assert statement(ev, "edge-a", "c")["id"] == statement(ev, "edge-a", "c")["id"]
    assert statement(ev, "edge-a", "c")["id"] != statement(ev, "edge-b", "c")["id"]
    assert len({s["id"] for s in statements([ev._replace(seq=i) for i in range(50)], "edge-a", "c")}) == 50
    # the event is part of the id: a device that reused a sequence number for another event gets another id
    assert statement(ev, "edge-a", "c")["id"] != statement(ev._replace(verb="completed"), "edge-a", "c")["id"]
    assert statement(ev, "edge-a", "c")["id"] == str(uuid.uuid5(STATEMENT_ID_NAMESPACE, "edge-a/9/s/viewed/r"))
    assert STATEMENT_ID_NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL, "https://w3id.org/school-edge/xapi/statement-ids")


def test_verbs_are_adl_vocabulary_or_the_projects_documented_namespace():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "xapi.md").read_text("utf-8")
    for verb, (iri, _, _) in VERB_IRIS.items():
        assert iri.startswith(("http://adlnet.gov/expapi/verbs/", "https://w3id.org/xapi/adl/verbs/",
                               "https://w3id.org/school-edge/xapi/verbs/")), iri
        assert iri in doc, f"{verb}: {iri} is not documented in docs/xapi.md"


def test_export_xapi_command_writes_every_journal_event(appliance, tmp_path):
    appliance.set_identity(school_code="4401020301")
    appliance.journal.append_many([("stu-1", "viewed", "res-1", {}), ("stu-1", "completed", "res-1", {"s": 30}),
                                   ("stu-2", "answered", "res-2", {"correct": False})])
    out = tmp_path / "statements.json"
    run = CliRunner().invoke(main, ["edge", "export-xapi", "--data", str(appliance.data_dir), "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "3" in run.output
    doc = json.loads(out.read_text("utf-8"))
    assert [s["verb"]["display"]["en-US"] for s in doc] == ["experienced", "completed", "answered"]
    assert doc[2]["result"]["success"] is False
    stdout = CliRunner().invoke(main, ["edge", "export-xapi", "--data", str(appliance.data_dir)])
    assert json.loads(stdout.output) == doc


def test_export_xapi_to_an_unwritable_place_fails_with_one_line(appliance, tmp_path):
    run = CliRunner().invoke(main, ["edge", "export-xapi", "--data", str(appliance.data_dir),
                                    "--out", str(tmp_path / "missing" / "x.json")])
    assert run.exit_code == 1 and "cannot write" in run.output and "Traceback" not in run.output
    assert not (tmp_path / "missing").exists()

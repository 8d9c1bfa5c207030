"""The leak check (tests/fixtures/leaks.py) fails a test that leaves a thread - daemon
or not - or a process behind, also a process orphaned to init, and passes one that
cleans up. Proven on a small test file run by a real pytest in a subprocess."""

from __future__ import annotations

import psutil

from fixtures.common import REPO

CONFTEST = """
pytest_plugins = ["fixtures.leaks"]


def pytest_configure(config):
    import fixtures.leaks

    fixtures.leaks.LEAK_GRACE_S = 0.5  # what is left after half a second is left for good here
    fixtures.leaks.LIBRARY_THREADS["keeper-"] = "a library's thread for the life of the interpreter"
    fixtures.leaks.DETACHED_HELPERS["late-helper"] = "a module program's helper that detaches to init"
"""

LEAKY_TESTS = """
import subprocess
import threading
import time

import pytest

stop = threading.Event()
servers = []  # held, as a server object would be: a Popen dropped while running warns by itself


def test_leaves_a_daemon_thread():
    threading.Thread(target=stop.wait, name="forgotten-poller", daemon=True).start()


def test_leaves_a_child_process():
    servers.append(subprocess.Popen(["sleep", "613"]))


def test_leaves_a_process_orphaned_to_init():
    subprocess.run(["sh", "-c", "sleep 617 & exit 0"], check=True)


def test_cleans_up_its_thread_and_process():
    t = threading.Thread(target=stop.wait, name="joined-worker", daemon=True)
    t.start()
    p = subprocess.Popen(["sleep", "619"])
    p.kill()
    p.wait()
    stop.set()
    t.join()


def test_a_detached_helper_is_left_to_the_module_check():
    subprocess.run(["bash", "-c", "(exec -a late-helper sleep 623) & exit 0"], check=True)


def test_a_library_thread_on_the_allow_list_is_not_a_leak():
    threading.Thread(target=threading.Event().wait, args=(3,), name="keeper-1", daemon=True).start()


@pytest.fixture(scope="module")
def busy_module_server():
    server = subprocess.Popen(["sh", "-c", "while :; do sleep 0.1; done"])  # a new child every tenth of a second
    yield server
    server.kill()
    server.wait()


def test_what_a_module_server_starts_during_a_test_is_the_modules(busy_module_server):
    time.sleep(0.3)


@pytest.fixture(scope="module")
def module_server():
    threading.Thread(target=threading.Event().wait, name="module-server", daemon=True).start()


def test_uses_a_module_fixture_that_leaks(module_server):
    pass
"""


def _sleeping(seconds: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["cmdline"] == ["sleep", seconds] and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


def test_the_leak_check_fails_leaking_tests_names_what_leaked_and_kills_leaked_processes(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "tests"))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # a run of its own, not one of the outer run's xdist workers
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rE", "-W", "error")
    # every test body passes; the check errors at the teardown of each leaking one and of the module
    result.assert_outcomes(passed=8, errors=4)
    result.stdout.fnmatch_lines_random([
        "ERROR test_leaky.py::test_leaves_a_daemon_thread - *",
        "ERROR test_leaky.py::test_leaves_a_child_process - *",
        "ERROR test_leaky.py::test_leaves_a_process_orphaned_to_init - *",
        "ERROR test_leaky.py::test_uses_a_module_fixture_that_leaks - *",
    ])
    out = result.stdout.str()
    assert "thread 'forgotten-poller' (daemon=True)" in out
    assert "sleep 613" in out and "sleep 617" in out and "sleep 619" not in out
    assert "the module's fixtures left behind" in out and "'module-server'" in out
    # a helper a test saw start is not the test's, but the module's check still finds it outliving the module
    assert "test_a_detached_helper_is_left_to_the_module_check" not in out
    assert "late-helper 623" in out.split("the module's fixtures left behind:", 1)[1].split("=====", 1)[0]
    assert "joined-worker" not in out and "keeper-1" not in out and "sleep 0.1" not in out
    assert _sleeping("613") == [] and _sleeping("617") == []  # reported, then killed
    assert not [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[:2] == ["late-helper", "623"]]

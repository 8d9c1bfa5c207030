"""hub_sync.core.processes: a real tiny HTTP server started in its own session, polled
until it answers, and stopped with everything it forked - also when it ignores SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from hub_sync.core.errors import ProcessError
from hub_sync.core.processes import SupervisedProcess, group_members, answers_http, free_port, wait_until

# argv: port, then flags: "stubborn" (the server ignores SIGTERM), "fork" (it forks a child,
# a worker say), "stubborn-child" (it forks a child that ignores SIGTERM)
SERVER = r"""
import http.server, os, signal, sys, time
port, flags = int(sys.argv[1]), sys.argv[2:]
print("starting " + "x" * 100_000, flush=True)  # more than a pipe holds: a pipe nobody reads would block here
for flag in ("fork", "stubborn-child"):
    if flag in flags and os.fork() == 0:
        if flag == "stubborn-child":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(1)
if "stubborn" in flags:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("serving on", port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def tiny_server(*flags: str, log=None) -> tuple[SupervisedProcess, str]:
    port = free_port()
    return SupervisedProcess([sys.executable, "-c", SERVER, str(port), *flags], log=log), f"http://127.0.0.1:{port}/"


def test_started_server_answers_and_sigterm_ends_its_whole_group():
    server, url = tiny_server("fork")
    with server:
        server.wait_http(url, timeout_s=20)
        assert answers_http(url) and server.running()
        assert len(group_members(server.pid)) == 2  # the server and the child it forked
        assert "serving on" in server.output()
    assert not server.running() and server.returncode == -signal.SIGTERM
    assert group_members(server.pid) == []
    assert not answers_http(url)


def test_a_process_that_exits_before_answering_fails_at_once_with_its_output():
    port = free_port()
    server = SupervisedProcess([sys.executable, "-c", "import sys; print('no config file here'); sys.exit(3)"])
    started = time.monotonic()
    with pytest.raises(ProcessError) as err:
        server.wait_http(f"http://127.0.0.1:{port}/", timeout_s=30)
    assert time.monotonic() - started < 10  # not the whole timeout
    assert "exited with 3" in str(err.value) and "no config file here" in err.value.details["output"]
    assert server.returncode == 3


def test_a_process_that_never_answers_is_stopped_after_the_timeout():
    port = free_port()
    server = SupervisedProcess([sys.executable, "-c", "import time; print('thinking', flush=True); time.sleep(60)"])
    with pytest.raises(ProcessError) as err:
        server.wait_http(f"http://127.0.0.1:{port}/", timeout_s=1)
    assert "after 1 s" in str(err.value) and "thinking" in err.value.details["output"]
    assert not server.running() and group_members(server.pid) == []


def test_a_server_ignoring_sigterm_is_killed_with_its_children_after_the_grace():
    server, url = tiny_server("stubborn", "stubborn-child")
    server.wait_http(url, timeout_s=20)
    started = time.monotonic()
    assert server.stop(grace_s=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 10
    assert group_members(server.pid) == [] and not answers_http(url)


def test_a_child_that_outlives_the_server_is_killed_after_the_grace():
    server, url = tiny_server("stubborn-child")
    server.wait_http(url, timeout_s=20)
    started = time.monotonic()
    assert server.stop(grace_s=0.5) == -signal.SIGTERM  # the server itself went at once
    assert 0.5 <= time.monotonic() - started < 10
    assert group_members(server.pid) == []


def test_kill_is_immediate_for_the_whole_group():
    server, url = tiny_server("fork")
    server.wait_http(url, timeout_s=20)
    assert server.kill() == -signal.SIGKILL
    assert group_members(server.pid) == []


def test_output_goes_to_the_named_log_and_stays_readable_after_stop(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("an earlier run\n", "utf-8")
    server, url = tiny_server(log=log)
    server.wait_http(url, timeout_s=20)
    server.stop()
    text = log.read_text("utf-8")
    assert text.startswith("an earlier run\n") and "serving on" in text  # appended, not replaced
    assert server.output() == text


def test_reading_the_output_while_the_process_prints_loses_no_line():
    # the process writes through the same open file as output() reads: reading must not move where it writes
    printer = SupervisedProcess([sys.executable, "-c", "import time\nfor i in range(3000):\n"
                                 "    print(f'line {i}', flush=True)\n    if i % 10 == 0: time.sleep(0.001)"])
    try:
        while printer.running():
            printer.output()
    finally:
        printer.stop()
    assert printer.returncode == 0
    assert printer.output() == "".join(f"line {i}\n" for i in range(3000))


def test_a_process_is_in_its_own_session_and_out_of_the_callers():
    server, url = tiny_server()
    with server:
        server.wait_http(url, timeout_s=20)
        assert os.getsid(server.pid) == server.pid != os.getsid(0)


def test_wait_until_returns_the_first_true_value_or_names_what_it_waited_for():
    calls = []
    assert wait_until(lambda: calls.append(1) or (len(calls) >= 3 and "ready"), 5, "three calls", interval_s=0.01) == "ready"
    with pytest.raises(TimeoutError, match="gave up waiting for the moon after 0.2 s"):
        wait_until(lambda: False, 0.2, "the moon")


def test_polling_a_server_reuses_one_tls_context(monkeypatch):
    """httpx would load the CA bundle into a new SSLContext for every poll (~30 ms of CPU each);
    the clients share one, made once, that still verifies certificates as httpx's default does."""
    import http.server
    import ssl
    import threading

    from hub_sync.core.tls import client_tls

    made = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **kw: made.append(1) or real(*a, **kw))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert all(answers_http(url) for _ in range(20))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert len(made) <= 1  # none if an earlier test of this process made the shared one already
    ctx = client_tls()
    assert ctx is client_tls() and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname

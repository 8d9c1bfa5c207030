"""The county console's accounts, logins and roles, against a hub served by gunicorn:
the appliance's throttling rules, CSRF on every form, same-site ``next=``, logout,
each role's pages and refusals, and ``school-edge hub user``."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
from click.testing import CliRunner
from fixtures.common import SCHOOL
from fixtures.console import CONSOLE_PASSWORD
from fixtures.console import CSRF as CSRF_TOKEN

from edge_agent.cli import main
from hub_sync.core import login_throttle
from hub_sync.hub import accounts as accounts_module
from hub_sync.hub.accounts import LIMITS, Accounts
from hub_sync.hub.audit import AuditLog
from hub_sync.hub.console_errors import BusyError, ConsoleError

pytestmark = pytest.mark.slow  # a real gunicorn hub per module


def failures(hub, key: str) -> tuple[int, int] | None:
    row = hub.db.execute("select failures, wrong_total from login_failures where key = ?", [key]).fetchone()
    return tuple(row) if row else None


def test_login_lands_on_the_page_asked_for_and_logout_ends_the_session(console_hub):
    s = console_hub.session()
    r = s.get("/console/accounts")
    assert r.status_code == 302 and r.headers["location"] == "/console/login?next=/console/accounts"
    r = s.login("admin", next_="/console/accounts")
    assert r.status_code == 302 and r.headers["location"] == "/console/accounts"
    page = s.get("/console/accounts")
    assert page.status_code == 200 and 'data-account="head"' in page.text and "校长" in page.text
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN" and "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    assert s.post("/console/logout", {}).status_code == 302
    assert s.get("/console/accounts").status_code == 302          # the session ended at the hub, not only in the cookie
    s.close()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/%2F%2Fevil.example"])
def test_next_leads_only_to_a_page_of_the_console_site(console_hub, target):
    s = console_hub.session()
    r = s.login("view", next_=target)
    assert r.status_code == 302 and r.headers["location"] == "/console/"
    s.close()


def test_a_form_without_its_csrf_token_changes_nothing(console_hub):
    s = console_hub.session("admin")
    before = len(Accounts(console_hub.hub.db).all())
    r = s.http.post("/console/accounts", data={"name": "sneaky", "role": "viewer", "password": "long-enough-pw"})
    assert r.status_code == 400 and "页面已过期" in r.text
    assert len(Accounts(console_hub.hub.db).all()) == before
    s.close()


def test_each_role_sees_its_pages_and_is_refused_the_others(console_hub):
    expect = {  # path -> roles that may open it (bureau_admin: all)
        "/console/": {"admin", "rev", "tech", "view", "head"},
        "/console/review": {"admin", "rev"},
        "/console/published": {"admin", "rev"},
        "/console/audit": {"admin", "rev", "view"},
        "/console/accounts": {"admin"},
    }
    for name in ("admin", "rev", "tech", "view", "head"):
        s = console_hub.session(name)
        for path, allowed in expect.items():
            r = s.get(path)
            if name in allowed:
                assert r.status_code == 200, (name, path)
            else:
                assert r.status_code == 403 and "没有权限" in r.text, (name, path)
        s.close()


def test_a_viewer_cannot_approve_and_nothing_changes(console_hub):
    offer_id = console_hub.add_offer()
    s = console_hub.session("view")
    r = s.post(f"/console/review/{offer_id}/approve", {"channel": "math-1"})
    assert r.status_code == 403 and "没有权限" in r.text
    row = console_hub.hub.db.execute("select state from offers where id = ?", [offer_id]).fetchone()
    assert row[0] == "pending" and AuditLog(console_hub.hub.db).entries(target=f"offer:{offer_id}") == []
    s.close()


def test_pages_are_chinese_by_default_and_english_when_chosen(console_hub):
    s = console_hub.session("rev")
    assert '<html lang="zh-CN">' in s.get("/console/").text
    r = s.get("/console/lang/en?next=/console/review")
    assert r.status_code == 302 and r.headers["location"] == "/console/review"
    en = s.get("/console/review")
    assert '<html lang="en">' in en.text and "Resource review" in en.text and "资源审核" not in en.text
    s.close()


def test_wrong_passwords_lock_the_account_even_for_the_right_one(console_hub):
    Accounts(console_hub.hub.db).add("locked-out", "viewer", CONSOLE_PASSWORD)
    s = console_hub.session()
    for _ in range(LIMITS.account_max):
        r = s.login("locked-out", "wrong-password")
        assert r.status_code == 401 and "账号或密码不对" in r.text
    r = s.login("locked-out")
    assert r.status_code == 429 and "锁定" in r.text and 1 <= int(r.headers["Retry-After"]) <= LIMITS.account_lock_s
    account = Accounts(console_hub.hub.db).by_name("locked-out")
    assert failures(console_hub.hub, f"acct:{account.id}") == (0, LIMITS.account_max)
    # a bureau admin's new password clears the lock
    Accounts(console_hub.hub.db).set_password("locked-out", "a-new-password-1")
    assert s.login("locked-out", "a-new-password-1").status_code == 302
    s.close()


def test_a_burst_of_parallel_guesses_gets_at_most_the_budget_checked(console_hub):
    Accounts(console_hub.hub.db).add("burst-target", "viewer", CONSOLE_PASSWORD)
    sessions = [console_hub.session() for _ in range(4)]
    tokens = [s.token() for s in sessions]

    def guess(i: int) -> int:
        s = sessions[i % 4]
        return s.http.post("/console/login", data={"csrf_token": tokens[i % 4], "name": "burst-target",
                                                   "password": f"guess-{i}"}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(guess, range(24)))
    account = Accounts(console_hub.hub.db).by_name("burst-target")
    checked = failures(console_hub.hub, f"acct:{account.id}")[1]
    # each wrong answer was a checked password; a busy one (503: no argon2 turn, on a loaded machine) was given back
    assert checked == codes.count(401) <= LIMITS.account_max and set(codes) <= {401, 429, 503}
    assert codes.count(429) >= 24 - LIMITS.account_max - codes.count(503) and codes.count(429) > 0
    for s in sessions:
        s.close()


def test_unknown_names_lock_like_known_ones(console_hub):
    s = console_hub.session()
    for _ in range(LIMITS.account_max):
        assert s.login("nobody-here", "whatever-pw").status_code == 401
    assert s.login("nobody-here", "whatever-pw").status_code == 429
    assert failures(console_hub.hub, "name:nobody-here") == (0, LIMITS.account_max)
    s.close()


def test_a_disabled_account_is_logged_out_at_once_and_cannot_log_in(console_hub):
    Accounts(console_hub.hub.db).add("leaver", "reviewer", CONSOLE_PASSWORD)
    s = console_hub.session("leaver")
    assert s.get("/console/review").status_code == 200
    admin = console_hub.session("admin")
    r = admin.post("/console/accounts/leaver/disable", {}, page="/console/accounts")
    assert r.status_code == 302
    assert s.get("/console/review").status_code == 302                   # sent to the login page
    assert s.login("leaver").status_code == 401
    entry = AuditLog(console_hub.hub.db).entries(target="account:leaver")[0]
    assert (entry.actor, entry.action) == ("admin", "account_disabled")
    s.close()
    admin.close()


def test_the_accounts_page_refuses_bad_input_and_changes_nothing(console_hub):
    admin = console_hub.session("admin")
    before = [a.name for a in Accounts(console_hub.hub.db).all()]
    for data, message in [({"name": "h2", "role": "school_head", "password": "long-enough-pw"}, "必须绑定一所学校"),
                          ({"name": "v2", "role": "viewer", "school": SCHOOL, "password": "long-enough-pw"}, "只有校长账号"),
                          ({"name": "v3", "role": "viewer", "password": "short"}, "密码至少"),
                          ({"name": "rev", "role": "viewer", "password": "long-enough-pw"}, "已存在"),
                          ({"name": "REV", "role": "viewer", "password": "long-enough-pw"}, "已存在"),  # names ignore case
                          ({"name": "v4", "role": "emperor", "password": "long-enough-pw"}, "没有角色")]:
        r = admin.post("/console/accounts", data, page="/console/accounts")
        assert r.status_code == 400 and message in r.text, (data, r.text[-400:])
    assert [a.name for a in Accounts(console_hub.hub.db).all()] == before
    admin.close()


def test_account_names_ignore_case_on_either_engine(console_hub):
    """SQLite compares the name NOCASE, PostgreSQL by lower(): "Rev" is the account "rev" on both."""
    accounts = Accounts(console_hub.hub.db)
    assert accounts.by_name("REV").name == "rev"
    s = console_hub.session()
    assert s.login("Rev").status_code == 302 and s.get("/console/review").status_code == 200
    s.close()


def test_hub_user_commands_add_list_and_disable_with_the_password_from_a_file(console_hub, tmp_path):
    hub_dir = str(console_hub.hub.data_dir)
    pw = tmp_path / "pw"
    pw.write_text("file-password-1\n", "utf-8")
    r = CliRunner().invoke(main, ["hub", "user", "add", "--data", hub_dir, "cli-head", "--role", "school_head",
                                  "--school", SCHOOL, "--password-file", str(pw)])
    assert r.exit_code == 0 and "cli-head" in r.output
    r = CliRunner().invoke(main, ["hub", "user", "add", "--data", hub_dir, "cli-view", "--role", "viewer"],
                           input="prompted-pass-1\nprompted-pass-1\n")
    assert r.exit_code == 0, r.output
    listed = CliRunner().invoke(main, ["hub", "user", "list", "--data", hub_dir]).output
    assert "cli-head" in listed and SCHOOL in listed and "cli-view" in listed
    s = console_hub.session()
    assert s.login("cli-head", "file-password-1").status_code == 302
    assert s.login("cli-view", "prompted-pass-1").status_code == 302
    r = CliRunner().invoke(main, ["hub", "user", "disable", "--data", hub_dir, "cli-view"])
    assert r.exit_code == 0 and "停用" in r.output
    assert s.get("/console/").status_code == 302
    r = CliRunner().invoke(main, ["hub", "user", "add", "--data", hub_dir, "x1", "--role", "school_head", "--password-file", str(pw)])
    assert r.exit_code == 1 and "Traceback" not in r.output and "--school" in r.output
    s.close()


def test_no_argon2_turn_free_gives_busy_and_the_attempt_back(console_hub):
    db = console_hub.hub.db
    Accounts(db).add("busy-one", "viewer", CONSOLE_PASSWORD)
    account = Accounts(db).by_name("busy-one")
    held = [accounts_module._argon2_slots.acquire(timeout=5) for _ in range(accounts_module.ARGON2_CONCURRENT)]
    try:
        started = time.monotonic()
        with pytest.raises(BusyError) as caught:
            Accounts(db).login("busy-one", CONSOLE_PASSWORD, "127.0.0.9")
        assert caught.value.http_status == 503 and caught.value.details["retry_after_s"] == accounts_module.ARGON2_BUSY_RETRY_S
        assert time.monotonic() - started >= accounts_module.ARGON2_WAIT_S - 0.1
    finally:
        for ok in held:
            if ok:
                accounts_module._argon2_slots.release()
    assert failures(console_hub.hub, f"acct:{account.id}") == (0, 0)          # given back, not counted
    assert Accounts(db).login("busy-one", CONSOLE_PASSWORD, "127.0.0.9")[0].name == "busy-one"


def test_the_throttle_rules_are_one_module_shared_with_the_appliance():
    from edge_agent.spaces import throttle

    assert throttle.rules is login_throttle and throttle.Attempt is login_throttle.Attempt
    assert throttle.limits().account_max == LIMITS.account_max and throttle.limits().account_lock_s == LIMITS.account_lock_s
    with pytest.raises(ConsoleError):
        Accounts._check_password("short")


def test_behind_the_front_each_client_is_throttled_by_its_own_address(console_hub):
    from hub_sync.hub.app import create_hub_app

    client = create_hub_app(console_hub.hub).test_client()
    token = CSRF_TOKEN.search(client.get("/console/login").text).group(1)

    def wrong(remote: str, real: str) -> None:
        r = client.post("/console/login", data={"csrf_token": token, "name": "view", "password": "not-it-at-all"},
                        environ_base={"REMOTE_ADDR": remote}, headers={"X-Real-IP": real})
        assert r.status_code in (401, 429)

    wrong("", "10.20.0.7")                  # through the front's unix socket: the address it passes on
    wrong("10.20.0.8", "10.20.0.99")        # straight from the LAN: a claimed address is ignored
    wrong("127.0.0.5", "10.20.0.98")        # loopback without a front configured: ignored too
    assert failures(console_hub.hub, "client:10.20.0.7")[1] == 1
    assert failures(console_hub.hub, "client:10.20.0.8")[1] == 1
    assert failures(console_hub.hub, "client:127.0.0.5")[1] == 1
    assert failures(console_hub.hub, "client:10.20.0.99") is None and failures(console_hub.hub, "client:10.20.0.98") is None
    Accounts(console_hub.hub.db).set_password("view", CONSOLE_PASSWORD)   # the account's count back to none

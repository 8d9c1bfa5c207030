#!/usr/bin/env bash
# Sets up a fresh Debian machine for school-edge: system packages, then the
# project and its test tools with pip. Safe to run again. Needs root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null; then
  apt-get update -qq
  # avahi-daemon, avahi-utils and dbus: tests/test_lan_discovery.py browses with Debian's avahi;
  # postgresql: the hub's tests and bench/province.py start their own server (tests/fixtures/postgres.py)
  apt-get install -y -qq --no-install-recommends \
    python3 python3-pip rsync nginx wrk chromium fonts-wqy-microhei ffmpeg iproute2 procps ca-certificates faketime \
    avahi-daemon avahi-utils dbus postgresql postgresql-client >/dev/null
fi
# Debian marks its Python "externally managed" (PEP 668); this machine is the
# appliance, so the project goes into that Python and school-edge onto the PATH.
export PIP_BREAK_SYSTEM_PACKAGES=1
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
echo "school-edge installed: $(command -v school-edge)"

#!/usr/bin/env bash
# Sets up a fresh Debian machine for school-edge: system packages, then the
# project and its test tools with pip. Safe to run again. Needs root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    rsync nginx chromium fonts-wqy-microhei ffmpeg iproute2 procps ca-certificates >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
echo "school-edge installed: $(command -v school-edge)"

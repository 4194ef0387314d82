#!/usr/bin/env bash
# CI job: livedroid's runtime on Debian bookworm arm64 (as Raspberry Pi OS) under qemu-user-static,
# compared with x86-64. Run as root on an x86-64 Debian/Ubuntu machine with network access to the
# Debian mirror and PyPI, after .ci/run has made .venv. About 15 minutes the first time (it builds
# the arm64 root), 2-3 minutes when $LIVEDROID_ARM64_ROOT is cached between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
packages=(debootstrap qemu-user-static binfmt-support)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${packages[@]}" >/dev/null
fi

export LIVEDROID_ARM64=1
export LIVEDROID_ARM64_ROOT="${LIVEDROID_ARM64_ROOT:-/var/tmp/livedroid-arm64-root}"
.venv/bin/python -m pytest -m arm64 -rs tests/test_arm64_emulation.py

#!/usr/bin/env bash
# Installs the Debian packages the tests use (a real PostgreSQL server, a real browser, wrk), when missing.
# `make test` runs it once per .venv; CI runs the same `make test`, so nothing is ever installed by hand.
# Each package is listed with the tests that need it.
set -euo pipefail

PACKAGES=(
    postgresql          # a real PostgreSQL server, started by tests/postgres_server.py: tests/storage/test_postgres_*.py
    chromium            # the real headless browser of tests/browser/ and `make screenshots`, driven by Playwright
    fonts-dejavu-core   # fonts for chromium, so that the pages (and docs/screenshots/) render readable text
)

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

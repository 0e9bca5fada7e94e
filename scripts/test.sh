#!/usr/bin/env bash
# Runs every test of tillwire, after making sure what the tests need is here:
#   - Debian packages: chromium, chromium-driver (browser tests), cups-ipp-utils, avahi-daemon and dbus-daemon
#     (IPP printer tests: ippeveprinter needs DNS-SD, which the test runs privately on loopback);
#   - a reachable PostgreSQL (TILLWIRE_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/test);
#   - schemathesis (the API contract test), from PyPI into a virtual environment under target/.
# Nothing is skipped: if something cannot be provided, this script stops with a clear message.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\033[1;31mtest setup failed: %s\033[0m\n' "$*" >&2; exit 1; }

need_packages=()
command -v chromium >/dev/null 2>&1 || need_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_packages+=(chromium-driver)
export PATH="$PATH:/usr/sbin:/sbin"
command -v ippeveprinter >/dev/null 2>&1 || need_packages+=(cups-ipp-utils)
command -v avahi-daemon >/dev/null 2>&1 || need_packages+=(avahi-daemon)
command -v dbus-daemon >/dev/null 2>&1 || need_packages+=(dbus-daemon)
if [ ${#need_packages[@]} -gt 0 ]; then
  say "installing ${need_packages[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_packages[@]}" >/dev/null \
    || fail "could not install ${need_packages[*]}"
fi
for tool in chromium chromedriver ippeveprinter avahi-daemon dbus-daemon; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is still missing"
done

export TILLWIRE_TEST_PG_URL="${TILLWIRE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
say "checking PostgreSQL at $TILLWIRE_TEST_PG_URL"
pg_ready=false
for _ in $(seq 1 30); do
  if command -v psql >/dev/null 2>&1; then
    psql "$TILLWIRE_TEST_PG_URL" -Atqc 'SELECT 1' >/dev/null 2>&1 && { pg_ready=true; break; }
  else
    # No client installed: at least the port must answer; the tests report anything deeper.
    hostport="${TILLWIRE_TEST_PG_URL#*@}"; hostport="${hostport%%/*}"
    (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null && { pg_ready=true; break; }
  fi
  # A machine image whose PostgreSQL is installed but stopped: start it once.
  if [ "$_" = 1 ] && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >/dev/null 2>&1 || true
  fi
  sleep 1
done
$pg_ready || fail "PostgreSQL is not reachable at $TILLWIRE_TEST_PG_URL (the PostgreSQL tests never skip)"

SCHEMATHESIS_VERSION=4.32.5
tools="$PWD/target/test-tools"
export TILLWIRE_SCHEMATHESIS="$tools/schemathesis/bin/schemathesis"
if ! "$TILLWIRE_SCHEMATHESIS" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  say "installing schemathesis $SCHEMATHESIS_VERSION"
  command -v python3 >/dev/null 2>&1 || fail "python3 is missing (needed for schemathesis)"
  # A stale or moved environment (its interpreter gone) is made again from scratch.
  rm -rf "$tools/schemathesis"
  python3 -m venv "$tools/schemathesis" || fail "could not make a Python virtual environment"
  "$tools/schemathesis/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" \
    || fail "could not install schemathesis $SCHEMATHESIS_VERSION"
fi

say "cargo test --workspace"
# A fresh checkout gains nothing from incremental artefacts; they would only take disk space.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"

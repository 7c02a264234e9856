#!/usr/bin/env bash
# Install the Debian packages the tests and the demo start (idempotent).
# As root, missing packages are installed with apt; otherwise we say what is missing.
set -euo pipefail
# tmux: the output tests look at certman in an 80-column terminal.
# postgresql-15: the fleet store's tests run a throwaway cluster of their own (initdb, pg_ctl).
# iproute2: Caddy's ACME server runs in a network namespace whose loopback the tests bring up.
packages=(pebble bind9 bind9-utils nginx-light haproxy caddy iproute2 strace valgrind python3-venv tmux postgresql-15)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "make deps: every Debian package the tests use is installed"; exit 0; }
if [ "$(id -u)" -ne 0 ]; then
  echo "certman: missing Debian packages: ${missing[*]}" >&2
  echo "hint: run as root, or: sudo apt-get install --no-upgrade ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "make deps: installing ${missing[*]} with apt (nothing already installed is upgraded)"
apt-get update -qq
# --no-upgrade: a test run must never upgrade a package the host already has.
apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null
# Debian starts some of these as system services; the tests start their own copies.
for s in nginx haproxy caddy named bind9 postgresql; do
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$s" >/dev/null 2>&1 || true; fi
done

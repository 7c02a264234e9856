#!/usr/bin/env bash
# Install the Debian packages the tests and the demo start (idempotent).
# As root, missing packages are installed with apt; otherwise we say what is missing.
set -euo pipefail
packages=(pebble bind9 bind9-utils nginx-light haproxy caddy iproute2 strace valgrind python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "certman: missing Debian packages: ${missing[*]}" >&2
  echo "hint: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts some of these as system services; the tests start their own copies.
for s in nginx haproxy caddy named bind9; do
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$s" >/dev/null 2>&1 || true; fi
done

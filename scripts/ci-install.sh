#!/usr/bin/env bash
# Installs the system packages the test suite uses (Debian 12, as root): real front servers for the
# integration tests and the reference FastCGI client. Idempotent; fast when already installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(nginx apache2 libapache2-mod-proxy-uwsgi libfcgi-bin curl)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ci-install: missing ${need[*]} and not root; install them first" >&2
    exit 1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# apt starts the packaged services on the default ports; the tests run their own instances.
for s in nginx apache2; do
  if command -v service >/dev/null 2>&1; then service "$s" stop >/dev/null 2>&1 || true; fi
done
echo "ci-install: $(nginx -v 2>&1); $(apache2 -v 2>/dev/null | head -1)"

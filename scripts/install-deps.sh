#!/usr/bin/env bash
# Install every Debian 12 package mailcanary needs to build, test and run its demo lab.
# Idempotent: installs only what is missing. Must run as root (or with sudo available).
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config git
  libcurl4-openssl-dev libssl-dev libc-ares-dev libconfig-dev librrd-dev libcmocka-dev libpsl-dev publicsuffix python3-yaml
  clang libclang-rt-14-dev)
LAB_PKGS=(postfix dovecot-imapd dovecot-lmtpd dovecot-sieve postgrey dnsmasq-base
  rrdtool rrdcached swaks openssl bind9-dnsutils monitoring-plugins-basic procps iproute2 python3
  systemd chromium)

want=("${BUILD_PKGS[@]}" "${LAB_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix asks questions on install; answer them so the install never blocks (no stdin in CI).
echo "postfix postfix/main_mailer_type select Local only" | $SUDO debconf-set-selections
echo "postfix postfix/mailname string mailcanary.invalid" | $SUDO debconf-set-selections

echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
echo "install-deps: done"

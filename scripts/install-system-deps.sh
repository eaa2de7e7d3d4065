#!/usr/bin/env bash
# Install the Debian packages boatyard's local stack and tests use, if any is missing.
# Idempotent; needs root for apt-get (otherwise it prints what to install and fails).
set -euo pipefail

declare -A need=(
  [dockerd]=docker.io
  [docker-registry]=docker-registry
  [busybox]=busybox-static
  [chromium]=chromium
  [htpasswd]=apache2-utils
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# the busybox the base image copies must be the static one
if command -v busybox >/dev/null 2>&1 && ldd "$(command -v busybox)" >/dev/null 2>&1; then
  missing+=(busybox-static)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "boatyard needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" iptables >/dev/null

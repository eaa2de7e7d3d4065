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
  [runsc]=runsc  # gVisor: the local dockerd runs RUN steps in it (devstack/services.py)
  [gcc]=gcc  # builds the static ptrace probe of tests/docker/test_sandbox.py
  [node]=nodejs  # runs ui/validate.js against the image-reference corpus (tests/unit/test_image_ref_corpus.py)
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# gcc -static needs the C library's static archive
if [ ! -e /usr/lib/x86_64-linux-gnu/libc.a ] && [ ! -e /usr/lib/aarch64-linux-gnu/libc.a ]; then
  missing+=(libc6-dev)
fi
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

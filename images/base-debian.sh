#!/usr/bin/env bash
# A Python 3.11 base image made from Debian packages alone, for machines that cannot pull
# images: debootstrap a minimal bookworm tree, add the host's CA bundle (so pip inside
# a build reaches the package index), and `docker import` it.
#   images/base-debian.sh [TAG]     (default fmstudy/base-python:bookworm)
set -euo pipefail
tag="${1:-fmstudy/base-python:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag: present"; exit 0; fi
command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 2; }
root="$(mktemp -d /tmp/fmstudy-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1 \
  bookworm "$root" "$mirror" >/tmp/fmstudy-debootstrap.log 2>&1 \
  || { echo "error: debootstrap failed, see /tmp/fmstudy-debootstrap.log" >&2; exit 1; }
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "$tag: built from Debian bookworm ($(docker run --rm "$tag" python3 --version))"

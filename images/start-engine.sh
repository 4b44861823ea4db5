#!/usr/bin/env bash
# Start a Docker engine on this machine when none runs: Debian's docker.io, as root.
# Prints one line: "docker: running" or "skipped: <reason>", and always exits 0,
# so callers (CI, tests) decide what a missing engine means.
set -u
export PATH="/usr/sbin:/usr/bin:$PATH"
if docker info >/dev/null 2>&1; then echo "docker: running"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "skipped: no Docker engine running and not root to start one"; exit 0; fi
if ! command -v dockerd >/dev/null; then
  if command -v apt-get >/dev/null; then
    (apt-get install -y -q docker.io debootstrap || (apt-get update -q && apt-get install -y -q docker.io debootstrap)) \
      >/tmp/fmstudy-docker-install.log 2>&1 || { echo "skipped: apt-get could not install docker.io"; exit 0; }
  else
    echo "skipped: no dockerd and no apt-get to install Debian's docker.io"; exit 0
  fi
fi
log=/tmp/fmstudy-dockerd.log
if ! pgrep -x containerd >/dev/null; then
  nohup containerd >/tmp/fmstudy-containerd.log 2>&1 &
  sleep 2
fi
nohup dockerd --containerd=/run/containerd/containerd.sock >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if /usr/bin/docker info >/dev/null 2>&1 || docker info >/dev/null 2>&1; then echo "docker: running"; exit 0; fi
  sleep 1
done
echo "skipped: dockerd did not start within 60 s ($(tail -n 1 "$log" 2>/dev/null))"
exit 0

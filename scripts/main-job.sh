#!/usr/bin/env bash
# berth's main job on a fresh machine: install what is missing, build, start berthd (unless
# one is running), make the default busybox image from the host's static busybox, list it,
# and run a container in it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run -s build

data_root=${BERTH_DATA_ROOT:-/var/lib/berth}
exec_root=${BERTH_EXEC_ROOT:-/run/berth}
sock="$exec_root/berth.sock"
export BERTH_HOST="unix://$sock"
unset NODE_EXTRA_CA_CERTS

if ! bin/berth version >/dev/null 2>&1; then
  mkdir -p "$exec_root"
  nohup bin/berthd --data-root "$data_root" --exec-root "$exec_root" >>"$exec_root/berthd.log" 2>&1 &
  echo "berthd started (pid $!, log $exec_root/berthd.log)"
  for _ in $(seq 100); do bin/berth version >/dev/null 2>&1 && break; sleep 0.05; done
fi

if ! bin/berth image inspect busybox:latest >/dev/null 2>&1; then
  bash scripts/busybox-image.sh
fi
bin/berth images busybox
bin/berth run --rm busybox echo "hello from a berth container"

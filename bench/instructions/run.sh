#!/usr/bin/env bash
# Client instructions per request, etcd3 path vs the h2 transport, counted by valgrind's callgrind:
# unlike CPU time, the count does not depend on what else the (shared, loaded) machine is doing.
#   bench/instructions/run.sh            every workload, both transports (a few minutes each)
#   bench/instructions/run.sh h2 range [n]   one (n: requests or acquisitions counted)
# Workloads: range, txn, inflight, watch (one request or watch cycle: client.mjs) and mutex1, mutex10,
# mutex50 (a Mutex lock → release end to end with 1, 10 or 50 workers, per acquisition: mutex.mjs).
# Needs valgrind and etcd on PATH; builds dist/ first; starts a throwaway etcd on 127.0.0.1:${INSTR_PORT:-23799}.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run build >/dev/null
port=${INSTR_PORT:-23799}; peer=$((port - 1))
work=$(mktemp -d /tmp/leasehold-instructions-XXXXXX)
etcd --data-dir "$work/data" --listen-client-urls http://127.0.0.1:$port --advertise-client-urls http://127.0.0.1:$port \
  --listen-peer-urls http://127.0.0.1:$peer --initial-advertise-peer-urls http://127.0.0.1:$peer \
  --initial-cluster default=http://127.0.0.1:$peer --unsafe-no-fsync >"$work/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill $etcd_pid 2>/dev/null; rm -rf "$work"' EXIT
until etcdctl --endpoints=127.0.0.1:$port endpoint health >/dev/null 2>&1; do sleep 0.2; done

one() { # impl workload n
  local gate="$work/gate" out="$work/out"
  rm -f "$gate"
  local script=(bench/instructions/client.mjs "$1" "$2" "$3")
  [[ $2 == mutex* ]] && script=(bench/instructions/mutex.mjs "$1" "${2#mutex}" "$3")
  ETCD=127.0.0.1:$port GATE="$gate" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="${CALLGRIND_OUT:-/dev/null}" \
    node "${script[@]}" >"$out" 2>&1 &
  local pid=$!
  until grep -q READY "$out"; do sleep 1; kill -0 $pid 2>/dev/null || { echo "$1 $2: failed"; cat "$out"; return 1; }; done
  callgrind_control -i on $pid >/dev/null
  touch "$gate"
  wait $pid
  local ir; ir=$(grep Collected "$out" | awk '{print $4}')
  local per=$3 unit=request
  [ "$2" = inflight ] && per=$(( $3 * 20 ))
  [ "$2" = watch ] && unit='create → event → cancel'
  [[ $2 == mutex* ]] && unit="acquisition (lock → release, ${2#mutex} workers)" && per=$(grep -o '([0-9]*)' "$out" | tr -d '()')
  echo "$1 $2: $(( ir / per )) instructions per $unit$(grep -o ', [0-9.]* unary requests per acquisition' "$out" | sed 's/ per acquisition//')"
}

declare -A count=([range]=500 [txn]=500 [inflight]=25 [watch]=100 [mutex1]=300 [mutex10]=300 [mutex50]=300)
if [ $# -ge 2 ]; then one "$1" "$2" "${3:-${count[$2]}}"; exit; fi
for w in range txn inflight watch mutex1 mutex10 mutex50; do for impl in etcd3 h2; do one $impl $w "${count[$w]}"; done; done

#!/usr/bin/env bash
# A three-node Hourglass cluster on this machine's loopback, in one command.
#
#   scripts/cluster.sh up       build, start three nodes, wait until ready
#   scripts/cluster.sh status   show the members, as the first node that answers sees them
#   scripts/cluster.sh down     stop the nodes (data is kept)
#   scripts/cluster.sh clean    stop the nodes and delete their data
#   HOURGLASS_GROUPS=1 scripts/cluster.sh up   a new cluster of one raft group instead of
#                               three (any HOURGLASS_* variable sets that server flag)
#
# Node i (1..3) serves HTTP on 127.0.0.1:70i0, raft on 70i1 and gossip on
# 70i2 (node 1: 7010/7011/7012), keeps its data in hourglass-cluster/ni and
# logs to hourglass-cluster/ni.log. Any node accepts any request.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=hourglass-cluster
bin=$dir/hourglass

port() { echo "70$1$2"; }   # port NODE KIND(0 http, 1 raft, 2 gossip)

up() {
  mkdir -p "$dir"
  echo "building $bin"
  go build -o "$bin" ./cmd/hourglass
  join="127.0.0.1:$(port 1 2),127.0.0.1:$(port 2 2),127.0.0.1:$(port 3 2)"
  for i in 1 2 3; do
    if [ -f "$dir/n$i.pid" ] && kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
      echo "node n$i is already running (pid $(cat "$dir/n$i.pid"))"; continue
    fi
    "$bin" server --node-id "n$i" --data-dir "$dir/n$i" \
      --http-addr "127.0.0.1:$(port "$i" 0)" --raft-addr "127.0.0.1:$(port "$i" 1)" \
      --gossip-addr "127.0.0.1:$(port "$i" 2)" --join "$join" --bootstrap-expect 3 \
      >"$dir/n$i.log" 2>&1 &
    echo $! >"$dir/n$i.pid"
    echo "started n$i (pid $!): http://127.0.0.1:$(port "$i" 0)"
  done
  for i in 1 2 3; do
    # Ready once is enough: a node is briefly not ready again while a
    # group's leadership moves to its preferred node just after start.
    ready=""
    for _ in $(seq 1 150); do
      curl -fsS "http://127.0.0.1:$(port "$i" 0)/readyz" >/dev/null 2>&1 && { ready=1; break; }
      if ! kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
        echo "node n$i exited; its log:"; tail -20 "$dir/n$i.log"; exit 1
      fi
      sleep 0.2
    done
    [ -n "$ready" ] || { echo "n$i not ready after 30s; see $dir/n$i.log"; exit 1; }
  done
  echo "cluster ready"
  status
}

status() {
  # Ask the first node that answers: any of them may be down.
  for i in 1 2 3; do
    if curl -fsS -o /dev/null "http://127.0.0.1:$(port "$i" 0)/healthz" 2>/dev/null; then
      "$bin" cluster members --addr "http://127.0.0.1:$(port "$i" 0)"
      "$bin" cluster groups --addr "http://127.0.0.1:$(port "$i" 0)"
      return
    fi
  done
  echo "no node answers"; return 1
}

down() {
  for i in 1 2 3; do
    [ -f "$dir/n$i.pid" ] || continue
    pid=$(cat "$dir/n$i.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "stopped n$i"
    fi
    rm -f "$dir/n$i.pid"
  done
}

case "${1:-}" in
  up) up ;;
  status) status ;;
  down) down ;;
  clean) down; rm -rf "$dir"; echo "removed $dir" ;;
  *) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 2 ;;
esac

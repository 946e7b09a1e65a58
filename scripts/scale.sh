#!/usr/bin/env bash
# Horizontal scaling, measured: clusters of 1, 3 (and 5) nodes, each node a
# container limited to a share of a core (docker run --cpus), so that the
# nodes' CPU is the bottleneck as on real machines, with the load generator
# (hourglass bench, not limited) on the host. For each cluster: one raft
# group (as before groups) and one group per node, each group on three of
# the nodes (--replicas 3, the default); batched creates spread over the
# nodes, then pull workers leasing in batches from every node.
#
#   scripts/scale.sh                   1 and 3 nodes
#   NODES="1 3 5" scripts/scale.sh     and 5
#   CPUS=0.5 TASKS=50000 scripts/scale.sh
#   TMPFS=1 scripts/scale.sh           data directories in memory (tmpfs)
#   KEEP=dir scripts/scale.sh          keep each run's bench output and node logs in dir
#   ONE_GROUP=0 NODES=5 scripts/scale.sh   only the one-group-per-node row
#   BENCH_FLAGS="--lease 1m" scripts/scale.sh   more flags for hourglass bench
#   SERVER_FLAGS="" scripts/scale.sh   servers with Hourglass's default raft timing (below)
#
# All containers share this machine's one disk, and every raft group of
# every node fsyncs its own log on it: with more groups the disk, not the
# CPU, can be what is measured. TMPFS=1 takes the disk out (fsync is then
# free), to see what the nodes' CPU allows.
#
# The servers run with raft's own timing (1s heartbeat and election
# timeouts, 500ms lease) rather than Hourglass's faster defaults: on a
# quarter of a core, a burst starves the heartbeats, and with the defaults
# followers called elections in the middle of the lease burst (README,
# "Nodes with a fraction of a core"); SERVER_FLAGS replaces them.
#
# Prints one line per run: nodes, groups, creates/s, leases/s, the
# checker's verdict. Needs Docker (no image is pulled: the image is built
# FROM scratch around the static binary, scripts/docker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
nodes_list=${NODES:-"1 3"}
cpus=${CPUS:-0.25}
tasks=${TASKS:-30000}
server_flags=${SERVER_FLAGS-"--raft-heartbeat-timeout 1s --raft-election-timeout 1s --raft-lease-timeout 500ms"}
image=hourglass:scale
net=hourglass-scale
command -v jq >/dev/null || { echo "scale.sh needs jq (apt-get install jq)"; exit 1; }
scripts/docker.sh "$image"
go build -o /tmp/hourglass-scale-bench ./cmd/hourglass
bench=/tmp/hourglass-scale-bench

cleanup() {
  docker ps -aq --filter "name=^hgscale-" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
docker network create --subnet 172.29.7.0/24 "$net" >/dev/null

# run N G: a cluster of N nodes and G groups, measured, then removed.
run() {
  local n=$1 g=$2 join="" addrs=()
  for i in $(seq 1 "$n"); do join="$join${join:+,}172.29.7.$((10 + i)):7072"; done
  for i in $(seq 1 "$n"); do
    local ip=172.29.7.$((10 + i)) expect=()
    [ "$n" -gt 1 ] && expect=(--join "$join" --bootstrap-expect "$n")
    local data=()
    [ -n "${TMPFS:-}" ] && data=(--tmpfs /data:rw,size=2g)
    docker run -d --name "hgscale-$i" --network "$net" --ip "$ip" --cpus "$cpus" "${data[@]}" \
      -p "127.0.0.1:$((7600 + i)):7070" "$image" server --node-id "n$i" --groups "$g" --log-level warn \
      --raft-advertise "$ip:7071" --gossip-advertise "$ip:7072" --http-advertise "$ip:7070" "${expect[@]}" $server_flags >/dev/null
    addrs+=(--addr "127.0.0.1:$((7600 + i))")
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 600); do
      curl -fsS "127.0.0.1:$((7600 + i))/readyz" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  # Wait until the placement has settled: every group on min(3, N) nodes,
  # each replica a caught-up voter, and (with a group per node) each node
  # leading one. Replicas and leaders move one at a time after the
  # cluster forms; a move during the run is a leader change, whose leases
  # in flight end only when they expire.
  local want=$((n < 3 ? n : 3)) spread=$((n < g ? n : g))
  for _ in $(seq 1 600); do
    settled=$(curl -fsS 127.0.0.1:7601/v1/cluster | jq --argjson r "$want" --argjson l "$spread" \
      '([.groups[] | (.replicas | length == $r) and all(.replicas[]; .state == "leader" or .state == "follower")] | all)
       and ([.groups[].leader.id] | unique | length >= $l)')
    [ "$settled" = true ] && break
    sleep 0.2
  done
  local out
  out=$("$bench" bench "${addrs[@]}" --tasks "$tasks" --batch 100 --concurrency 8 --due 30s --spread 0s --pull --pullers "$((4 * n))" ${BENCH_FLAGS:-} 2>&1 || true)
  local creates leases verdict
  creates=$(grep -E '^create ' <<<"$out" | grep -oE '[0-9]+ tasks/s' | head -1)
  leases=$(grep -E '^leased ' <<<"$out" | grep -oE '[0-9]+/s' | head -1)
  verdict=$(grep -E '^verdict ' <<<"$out" | sed 's/^verdict *//')
  printf '%d nodes, %d groups, --cpus %s each%s: creates %s, leases %s; %s\n' "$n" "$g" "$cpus" "${TMPFS:+, data in tmpfs}" "$creates" "$leases" "$verdict"
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    printf '%s\n' "$out" >"$KEEP/${n}n${g}g-bench.txt"
    for i in $(seq 1 "$n"); do docker logs "hgscale-$i" >"$KEEP/${n}n${g}g-n$i.log" 2>&1; done
  fi
  docker ps -aq --filter "name=^hgscale-" | xargs -r docker rm -f -v >/dev/null
}

for n in $nodes_list; do
  [ "${ONE_GROUP:-1}" = 0 ] && [ "$n" -gt 1 ] || run "$n" 1
  [ "$n" -gt 1 ] && run "$n" "$n"
done

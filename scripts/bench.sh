#!/usr/bin/env bash
# The standard benchmark scenarios, on one node and on a three-node
# loopback cluster, with the load generator (hourglass bench) on the same
# machine. Writes docs/benchmarks.md: the machine, the commands and a
# results table with each target next to what was measured. Takes about
# 15 minutes and a few GB of disk in a temporary directory.
#
#   scripts/bench.sh                      all scenarios → docs/benchmarks.md
#   OUT=/tmp/b.md scripts/bench.sh        write elsewhere
#
# Every scenario ends with the checker's verdict (tasks lost, delivered
# early, delivered twice); the script fails if any scenario lost a task or
# delivered one early.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-docs/benchmarks.md}

if ! command -v jq >/dev/null; then
  echo "installing jq"
  apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  apt_get install -y -qq jq >/dev/null || { apt_get update -qq && apt_get install -y -qq jq >/dev/null; }
fi

# The code measured: the commit, and whether the tree differed from it.
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD || commit="$commit (with local changes)"

work=$(mktemp -d /tmp/hourglass-bench.XXXXXX)
bin=$work/hourglass
declare -A pid=()
cleanup() {
  for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
echo "building $bin"
go build -o "$bin" ./cmd/hourglass

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
http() { echo "127.0.0.1:71${1}0"; }

# start I DIR [FLAGS...]: node nI, HTTP on 71I0, raft 71I1, gossip 71I2.
start() {
  local i=$1 dir=$2; shift 2
  "$bin" server --node-id "n$i" --data-dir "$dir/n$i" --log-level warn \
    --http-addr "$(http "$i")" --raft-addr "127.0.0.1:71${i}1" --gossip-addr "127.0.0.1:71${i}2" \
    "$@" >>"$dir/n$i.log" 2>&1 &
  pid[$i]=$!
}

ready() { # ready NODE [SECONDS, default 30]
  local i=$1 limit=${2:-30}
  for _ in $(seq 1 $((limit * 20))); do
    curl -fsS "http://$(http "$i")/readyz" >/dev/null 2>&1 && return 0
    kill -0 "${pid[$i]}" 2>/dev/null || { echo "node n$i exited"; tail -20 "$work"/*/n"$i".log; exit 1; }
    sleep 0.05
  done
  echo "node n$i not ready after ${limit}s"; exit 1
}

stop_all() {
  for i in "${!pid[@]}"; do kill -TERM "${pid[$i]}" 2>/dev/null || true; done
  for i in "${!pid[@]}"; do wait "${pid[$i]}" 2>/dev/null || true; unset "pid[$i]"; done
}

single() { # single NAME [FLAGS...]
  local dir=$work/$1; shift
  mkdir -p "$dir"; start 1 "$dir" "$@"; ready 1
}

cluster() { # cluster NAME [FLAGS...]
  local dir=$work/$1; shift
  mkdir -p "$dir"
  for i in 1 2 3; do
    start "$i" "$dir" --bootstrap-expect 3 --join "127.0.0.1:7112,127.0.0.1:7122,127.0.0.1:7132" "$@"
  done
  for i in 1 2 3; do ready "$i"; done
}

leader() { curl -fsS "http://$(http 1)/v1/cluster" | jq -r .leader.http_addr; }
leader_index() { leader | sed -E 's/^127\.0\.0\.1:71([0-9])0$/\1/'; }

# bench NAME [FLAGS...]: runs hourglass bench, keeps its JSON report.
bench() {
  local name=$1; shift
  echo; echo "== $name: hourglass bench $*"
  if ! "$bin" bench --json "$@" >"$work/$name.json"; then
    cat "$work/$name.json"; echo "scenario $name failed"; exit 1
  fi
  jq -c '{create: .create | {tasks_per_second, ack_p50_ms, ack_p99_ms}, delivery: .delivery | {per_second, lateness_p99_ms, longest_pause_ms}, fire_p99_ms: .server.fire_lateness_p99_ms_at_most, verdict}' "$work/$name.json"
  cmds+=("hourglass bench $*")
}
val() { jq -r "$2" "$work/$1.json"; }
verdict() { jq -r '.verdict | "\(.lost) lost, \(.early) early, \(.duplicates) dup"' "$work/$1.json"; }

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }
cmds=()

# --- one node: creates ---------------------------------------------------
single create
bench c1 --addr "$(http 1)" --concurrency 1 --tasks 10000 --due 20s --spread 5s
bench c64 --addr "$(http 1)" --concurrency 64 --tasks 100000 --due 25s --spread 10s
bench b100 --addr "$(http 1)" --concurrency 8 --batch 100 --tasks 300000 --due 15s --spread 25s
stop_all
row "create, 1 node, 1 sequential client" "≥ 3,000/s, p99 ≤ 1 ms" \
  "$(val c1 '"\(.create.tasks_per_second | floor)/s, p99 \(.create.ack_p99_ms) ms"')" "$(verdict c1)"
row "delivered lateness, 1 node, webhooks due at 2,000/s (the 1-client run)" "p99 ≤ 5 ms" \
  "$(val c1 '"p50 \(.delivery.lateness_p50_ms) ms, p99 \(.delivery.lateness_p99_ms) ms"')" "$(verdict c1)"
row "create, 1 node, 64 clients" "≥ 20,000/s, p99 ≤ 10 ms" \
  "$(val c64 '"\(.create.tasks_per_second | floor)/s, p99 \(.create.ack_p99_ms) ms"')" "$(verdict c64)"
row "create, 1 node, batches of 100" "≥ 60,000 tasks/s" \
  "$(val b100 '"\(.create.tasks_per_second | floor) tasks/s"')" "$(verdict b100)"

# --- three nodes: creates, through the leader ----------------------------
cluster create3
l=$(leader)
bench c1x3 --addr "$l" --concurrency 1 --tasks 5000 --due 20s --spread 5s
bench c64x3 --addr "$l" --concurrency 64 --tasks 50000 --due 20s --spread 10s
bench b100x3 --addr "$l" --concurrency 8 --batch 100 --tasks 200000 --due 15s --spread 20s
stop_all
row "create, 3 nodes, 1 / 64 clients / batches of 100" "≥ 1,500/s / ≥ 8,000/s / ≥ 20,000 tasks/s" \
  "$(val c1x3 '.create.tasks_per_second | floor')/s / $(val c64x3 '.create.tasks_per_second | floor')/s / $(val b100x3 '.create.tasks_per_second | floor') tasks/s" \
  "$(verdict c1x3); $(verdict c64x3); $(verdict b100x3)"

# --- one node, 1M pending: dispatch and delivery lateness ------------------
single dispatch
# Dispatch lateness is measured with pull workers (--pull): a task counts
# when a worker holds it, so what is measured is the wheel, the lease
# commit and the answer, not the speed of a webhook receiver.
bench pullsteady --addr "$(http 1)" --pull --pending 1000000 --concurrency 8 --batch 100 --tasks 300000 --due 15s --spread 3s
bench pullburst --addr "$(http 1)" --pull --concurrency 8 --batch 100 --tasks 100000 --due 10s --spread 1s
bench steady --addr "$(http 1)" --concurrency 8 --batch 100 --tasks 300000 --due 15s --spread 3s
bench burst --addr "$(http 1)" --concurrency 8 --batch 100 --tasks 100000 --due 10s --spread 1s
stop_all
row "dispatch lateness, 1M pending, steady 100k/s due" "p99 ≤ 5 ms" \
  "pull workers: p99 $(val pullsteady .delivery.lateness_p99_ms) ms at $(val pullsteady '.delivery.per_second | floor')/s (lease commit p99 ≤ $(val pullsteady .server.fire_lateness_p99_ms_at_most) ms); webhooks: fire p99 ≤ $(val steady .server.fire_lateness_p99_ms_at_most) ms" \
  "$(verdict pullsteady); $(verdict steady)"
row "dispatch lateness, 1M pending, 100k due in one second" "p99 ≤ 25 ms" \
  "pull workers: p99 $(val pullburst .delivery.lateness_p99_ms) ms at $(val pullburst '.delivery.per_second | floor')/s (lease commit p99 ≤ $(val pullburst .server.fire_lateness_p99_ms_at_most) ms); webhooks: fire p99 ≤ $(val burst .server.fire_lateness_p99_ms_at_most) ms" \
  "$(verdict pullburst); $(verdict burst)"
row "delivered lateness, same burst, webhook to a local no-op receiver" "p99 ≤ 5 s (≥ 20,000 deliveries/s)" \
  "$(val burst '"p99 \(.delivery.lateness_p99_ms / 1000 * 100 | round / 100) s (\(.delivery.per_second | floor)/s)"')" "$(verdict burst)"

# --- failover: kill -9 the leader while tasks fall due at 1,000/s -----------
failover() { # failover NAME [SERVER FLAGS...]
  local name=$1; shift
  cluster "$name" "$@"
  local victim; victim=$(leader_index)
  (sleep 15; echo "killing the leader n$victim"; kill -9 "${pid[$victim]}") &
  local killer=$!
  bench "$name" --addr "$(http 1)" --addr "$(http 2)" --addr "$(http 3)" --concurrency 4 --batch 50 --tasks 20000 --due 10s --spread 20s
  wait "$killer"
  unset "pid[$victim]"
  stop_all
}
# One raft group, so that the one leader carries every task: with a group
# per node the others' groups go on firing through the victim's failover,
# and the longest pause in deliveries would not show it.
failover failover --groups 1
failover failfast --groups 1 --raft-heartbeat-timeout 200ms --raft-election-timeout 200ms --raft-lease-timeout 100ms
row "failover until firing resumes after leader kill -9 (one group)" "≤ 3 s default, ≤ 1 s fast profile" \
  "$(val failover '.delivery.longest_pause_ms / 10 | round / 100') s default, $(val failfast '.delivery.longest_pause_ms / 10 | round / 100') s fast (longest pause in deliveries due 1 ms apart)" \
  "$(verdict failover); $(verdict failfast)"

# --- snapshot of 1M tasks ------------------------------------------------
single snap
bench snapfill --addr "$(http 1)" --pending 1000000 --tasks 1000 --due 5s
t=$(now); "$bin" snapshot save --addr "$(http 1)" "$work/1m.snap" >/dev/null; save=$(since "$t")
t=$(now); "$bin" snapshot restore --addr "$(http 1)" "$work/1m.snap" >/dev/null; restore=$(since "$t")
size=$(stat -c %s "$work/1m.snap")
raw=$(val snapfill .background.request_bytes)
stop_all
row "1M-task snapshot save / restore / size" "≤ 3 s / ≤ 3 s / ≤ 1.5× raw task bytes" \
  "$save s / $restore s / $(awk -v s="$size" -v r="$raw" 'BEGIN { printf "%.0f MiB = %.2f× the %.0f MiB of task JSON", s/1048576, s/r, r/1048576 }')" "$(verdict snapfill)"
cmds+=("hourglass snapshot save FILE; hourglass snapshot restore FILE")

# --- memory: tasks inside the horizon, and 10M beyond it ------------------
echo; echo "== heap per task in the wheel: go test -bench WheelMemory ./leader"
per=$(go test -run '^$' -bench WheelMemory -benchtime 3x ./leader | awk '/heap-B\/task/ { for (i = 1; i < NF; i++) if ($(i+1) == "heap-B/task") print $i }')
echo "$per B/task"
cmds+=("go test -run '^\$' -bench WheelMemory -benchtime 3x ./leader")

single tenm
bench tenm --addr "$(http 1)" --pending 10000000 --pending-spread 720h --tasks 1000 --due 5s
kill -TERM "${pid[1]}"; wait "${pid[1]}" || true
t=$(now); start 1 "$work/tenm"; ready 1; restart=$(since "$t")
bench tenm2 --addr "$(http 1)" --tasks 10000 --due 5s
# A power cut while the state file was open, as the next boot sees it: the
# record of an open state file under another boot, so the state file is
# rebuilt from the newest raft snapshot and the log after it.
kill -TERM "${pid[1]}"; wait "${pid[1]}" || true
echo "an earlier boot" >"$work/tenm/n1/groups/1/state.open"
t=$(now); start 1 "$work/tenm"; ready 1 600; rebuild=$(since "$t")
grep -q "rebuilding the state file" "$work/tenm/n1.log" || { echo "the state file was not rebuilt"; exit 1; }
bench tenm3 --addr "$(http 1)" --tasks 10000 --due 5s
stop_all
row "leader heap per pending task inside the horizon; beyond it" "≤ 150 B; ≈ 0" \
  "$per B (BenchmarkWheelMemory); 10M pending over 30 days: live heap $(val tenm '.server.end.heap_live_bytes / 1048576 | floor') MiB, $(val tenm '.server.end.wheel_tasks') in the wheel" \
  "$(verdict tenm)"
row "restart to ready with 10M tasks" "≤ 5 s" "$restart s (then $(val tenm2 .verdict.delivered) tasks fired: live heap $(val tenm2 '.server.end.heap_live_bytes / 1048576 | floor') MiB)" "$(verdict tenm2)"
row "restart to ready with 10M tasks after a power cut (state file rebuilt from the raft snapshot and log)" "—" "$rebuild s (then $(val tenm3 .verdict.delivered) tasks fired)" "$(verdict tenm3)"

# --- the report -----------------------------------------------------------
for f in "$work"/*.json; do
  if [ "$(jq '.verdict.lost + .verdict.early' "$f")" != 0 ]; then
    echo "$(basename "$f" .json): tasks lost or delivered early"; failed=1
  fi
done
# Sections measured by hand (peers side by side, CPU per task) follow the
# generated part, from "## Side by side" on: kept as they are.
kept=$(awk '/^## Side by side/ { keep = 1 } keep' "$out" 2>/dev/null || true)
{
  echo "# Benchmarks"
  echo
  echo "Written by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d) from commit $commit."
  echo "Load generator (\`hourglass bench\`) and servers share one machine:"
  echo
  echo "- $(lscpu | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }'), $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB memory"
  echo "- $(go version | cut -d' ' -f3-), $(uname -sr), data on $(df -T /tmp | awk 'NR == 2 { print $2 }')"
  echo
  echo "| scenario | target | measured | checker |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "The checker counts, for every task whose create was acknowledged: lost"
  echo "(never delivered), early (delivered before its time) and duplicate"
  echo "deliveries. Fire lateness is how long after its due time a task's firing"
  echo "was committed (the leader's \`hourglass_fire_lateness_seconds\` histogram;"
  echo "the value is the upper bound of the bucket holding the quantile)."
  echo "Delivered lateness is measured by the receiver, per task."
  echo
  echo "Scaling out over many nodes (clusters of 1, 3 and 5 containers, each"
  echo "limited to a quarter of a core, one raft group against one per node) is"
  echo "measured by \`scripts/scale.sh\`: its tables are in [scaling.md](scaling.md)."
  echo
  echo "## Commands"
  echo
  echo '```'
  printf '%s\n' "${cmds[@]}"
  echo '```'
  if [ -n "$kept" ]; then
    echo
    printf '%s\n' "$kept"
  fi
} >"$out"
echo; echo "wrote $out"; cat "$out"
exit "${failed:-0}"

#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
# formatting, go vet, staticcheck, a short run of each fuzz target, every
# test with the race detector, and the end-to-end and fault tests, which
# build the real binary and run it as processes, three-node clusters and
# Docker containers (where Docker is available). It installs what it needs
# (staticcheck; Debian's prometheus and chromium for the monitoring and
# console tests) by itself.
#
#   scripts/test.sh                 everything
#   FUZZTIME=500000x scripts/test.sh   longer fuzzing
#
# The fuzz budget is a count of executions, not a duration: Go 1.26's fuzz
# coordinator can fail a duration-bounded run with a bare "context deadline
# exceeded" at the deadline and no crashing input (golang/go#75804, fixed in
# Go 1.27); a count has no deadline to race.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2
FUZZTIME=${FUZZTIME:-30000x}
gobin="$(go env GOPATH)/bin"

step() { printf '\n== %s\n' "$*"; }

step "tools"
# promtool and prometheus (monitoring tests), chromium (console test).
missing=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]} from Debian's packages"
  # Another apt-get (a machine that has just booted runs its own) holds
  # dpkg's and the package lists' locks: wait for them rather than fail.
  # DPkg::Lock::Timeout covers dpkg's lock; the retries cover the lists'.
  apt_get() { DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  for try in 1 2 3 4 5 6 7 8 9 10; do
    apt_get update -qq && break
    [ "$try" -lt 10 ] || { echo "apt-get update failed 10 times"; exit 1; }
    echo "apt-get update failed (another apt may hold its lock); trying again in 15s"
    sleep 15
  done
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The tests that drive them fail, rather than skip, when they are missing.
export HOURGLASS_REQUIRE_TOOLS=1
# As root (CI is), the tests that mount file systems (a small tmpfs for the
# full disk, a FUSE file system for power cuts) fail rather than skip.
if [ "$(id -u)" -eq 0 ]; then export HOURGLASS_REQUIRE_ROOT=1; fi
# Where Docker is installed (CI), the container tests fail, rather than
# skip, when its daemon cannot be reached.
if command -v docker >/dev/null; then export HOURGLASS_REQUIRE_DOCKER=1; fi
# Files tests leave for people to look at (the console's screenshot).
export HOURGLASS_ARTIFACTS="$PWD/artifacts"
promtool --version | head -1
chromium --version

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
  echo "installing staticcheck ${STATICCHECK_VERSION}"
  GOBIN="$gobin" go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
"$gobin/staticcheck" ./...

step "prometheus rules and config"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
promtool check config deploy/prometheus/prometheus.yml

step "fuzz (${FUZZTIME} each)"
go test -run '^$' -fuzz '^FuzzApplyEntry$' -fuzztime "$FUZZTIME" ./fsm
go test -run '^$' -fuzz '^FuzzDecodeCreate$' -fuzztime "$FUZZTIME" ./httpapi
go test -run '^$' -fuzz '^FuzzDecodeQueue$' -fuzztime "$FUZZTIME" ./httpapi
go test -run '^$' -fuzz '^FuzzAPI$' -fuzztime "$FUZZTIME" ./httpapi
go test -run '^$' -fuzz '^FuzzDuplicateKey$' -fuzztime "$FUZZTIME" ./httpapi
go test -run '^$' -fuzz '^FuzzReadTokens$' -fuzztime "$FUZZTIME" ./httpapi
go test -run '^$' -fuzz '^FuzzMayNameID$' -fuzztime "$FUZZTIME" ./httpapi
go test -run '^$' -fuzz '^FuzzDecodeFast$' -fuzztime "$FUZZTIME" ./httpapi
go test -run '^$' -fuzz '^FuzzReadAnswer$' -fuzztime "$FUZZTIME" ./client
go test -run '^$' -fuzz '^FuzzAppendString$' -fuzztime "$FUZZTIME" ./wire
go test -run '^$' -fuzz '^FuzzAppendPayload$' -fuzztime "$FUZZTIME" ./wire
go test -run '^$' -fuzz '^FuzzVerifyWebhook$' -fuzztime "$FUZZTIME" ./wire
go test -run '^$' -fuzz '^FuzzRead$' -fuzztime "$FUZZTIME" ./fsm/archive
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime "$FUZZTIME" ./recurrence

step "go test -race (packages)"
go test -race -count=1 -timeout 15m $(go list ./... | grep -v '/cmd/hourglass$')

# The pull-worker test at full size (50,000 tasks) runs without -race and
# alone: under -race it runs 5,000, beside the other packages.
step "pull workers at full size"
go test -count=1 -v -run '^TestWorkersSurviveKilledWorkers$' ./client | grep -E '^(--- |ok|FAIL)|tasks,|_test\.go:'

# The end-to-end and fault tests build the real binary (with -race) and run
# it as processes, clusters of three, and containers where Docker is
# available. Each scenario logs what it saw; show those lines, or the whole
# log if anything failed.
step "end-to-end and fault tests (-race)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! go test -race -count=1 -timeout 20m -v ./cmd/hourglass >"$log" 2>&1; then
  cat "$log"
  # A failed scenario dumps its nodes' logs after its failure message:
  # repeat each failed test's own lines last, where a reader of the tail
  # finds them.
  echo; echo "== failed tests, their own lines (without node logs)"
  awk '/^=== RUN   [^\/]*$/ { buf = "" }
       (/^ +[a-z0-9_]+_test\.go:[0-9]+: / || /^        /) && !/level=/ { buf = buf $0 "\n" }
       /^--- FAIL/ { printf "%s%s\n", buf, $0; buf = "" }' "$log"
  exit 1
fi
grep -E '^(--- |ok|PASS)|lateness|acknowledged|skipped|saved|console:' "$log"

# The race detector slows the server ~10x, so the lateness the end-to-end
# test reports above is not the product's. Run it once more without.
step "end-to-end lateness, without the race detector"
go test -count=1 -run '^TestEndToEnd$' -v ./cmd/hourglass | grep -E 'lateness|^(ok|FAIL|---)'

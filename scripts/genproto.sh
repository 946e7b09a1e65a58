#!/usr/bin/env bash
# Regenerates fsm/fsmpb/*.pb.go from the .proto files. The generated files are
# committed, so building Hourglass never needs protoc; run this after editing
# a .proto. Installs protoc (Debian's protobuf-compiler) and protoc-gen-go if
# they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
  echo "installing protobuf-compiler" >&2
  apt-get install -y -qq protobuf-compiler >/dev/null
fi
gobin="$(go env GOPATH)/bin"
version=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
if ! "$gobin/protoc-gen-go" --version 2>/dev/null | grep -q "${version}"; then
  echo "installing protoc-gen-go ${version}" >&2
  GOBIN="$gobin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${version}"
fi
PATH="$gobin:$PATH" protoc --go_out=. --go_opt=module=github.com/hourglass-scheduler/hourglass fsm/fsmpb/*.proto
echo "generated: $(ls fsm/fsmpb/*.pb.go)"

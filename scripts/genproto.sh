#!/usr/bin/env bash
# Regenerates fsm/fsmpb/*.pb.go from the .proto files: protoc-gen-go's
# messages and protoc-gen-go-vtproto's reflection-free Marshal/Unmarshal
# (the state machine's hot path). The generated files are committed, so
# building Hourglass never needs protoc; run this after editing a .proto.
# Installs protoc (Debian's protobuf-compiler) and the two plugins, at the
# versions go.mod names, if they are missing.
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
vtversion=$(go list -m -f '{{.Version}}' github.com/planetscale/vtprotobuf)
if [ "$(cat "$gobin/.protoc-gen-go-vtproto.version" 2>/dev/null)" != "${vtversion}" ]; then
  echo "installing protoc-gen-go-vtproto ${vtversion}" >&2
  GOBIN="$gobin" go install "github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@${vtversion}"
  echo "${vtversion}" > "$gobin/.protoc-gen-go-vtproto.version"
fi
module=github.com/hourglass-scheduler/hourglass
PATH="$gobin:$PATH" protoc --go_out=. --go_opt=module=$module \
  --go-vtproto_out=. --go-vtproto_opt=module=$module,features=marshal+unmarshal+size \
  fsm/fsmpb/*.proto
echo "generated: $(ls fsm/fsmpb/*.pb.go)"

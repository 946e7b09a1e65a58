#!/usr/bin/env bash
# Builds the hourglass:dev image (deploy/Dockerfile, FROM scratch): a
# static binary and the host's CA certificates, nothing else.
#   scripts/docker.sh [TAG]     default tag hourglass:dev
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-hourglass:dev}
echo "building a static binary"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.stampedVersion=$(git describe --always --dirty 2>/dev/null || echo dev)" \
  -o deploy/hourglass ./cmd/hourglass
cp /etc/ssl/certs/ca-certificates.crt deploy/ca-certificates.crt
docker build -q -t "$tag" deploy >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"

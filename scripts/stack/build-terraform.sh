#!/usr/bin/env bash
# Builds Terraform from the Go module proxy's source into $2/terraform.
#
#   build-terraform.sh <version> <out-dir>
#
# `go install github.com/hashicorp/terraform@vX` is refused (its go.mod has
# replace directives), and the module zip leaves out its nested modules (the
# cloud remote-state backends and internal/legacy). So the source is copied,
# those requires, replaces and the nine backends that need them are dropped,
# and the rest is built: local, http, inmem, remote and cloud backends remain.
set -euo pipefail
version=$1 out=$2
mod=github.com/hashicorp/terraform
dir=$(GOFLAGS=-mod=mod go mod download -json "$mod@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { echo "build-terraform: no source for $mod@v$version" >&2; exit 1; }
src=$(mktemp -d)
trap 'chmod -R u+w "$src" 2>/dev/null; rm -rf "$src"' EXIT
cp -r "$dir/." "$src"
chmod -R u+w "$src"
cd "$src"
nested='internal/(backend/remote-state/(azure|consul|cos|gcs|kubernetes|oci|oss|pg|s3)|legacy)'
sed -i -E "\#^replace $mod/$nested #d; \#^[[:space:]]+$mod/$nested #d" go.mod
init=internal/backend/init/init.go
sed -i -E '/backend(Azure|Consul|Cos|GCS|Kubernetes|OCI|OSS|Pg|S3) "/d; /"(azurerm|consul|cos|gcs|kubernetes|oss|pg|s3|oci)": +func\(\) backend\.Backend/d' "$init"
if grep -qE "$mod/$nested" go.mod "$init"; then
	echo "build-terraform: $mod@v$version still names a nested module; its layout changed" >&2
	exit 1
fi
mkdir -p "$out"
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $mod/version.dev=no" -o "$out/terraform.new" .
mv "$out/terraform.new" "$out/terraform"
"$out/terraform" version | head -n1

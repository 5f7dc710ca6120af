#!/usr/bin/env bash
# Runs the quickstart release with the provider built from this checkout:
# the test stack must be up (make quickstart does both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state_dir="${RELEASE_STACK_DIR:-/tmp/release-stack}"
# shellcheck disable=SC1091
source "$state_dir/env"

work="$root/.quickstart"
mkdir -p "$work"
cp "$root/examples/quickstart/main.tf" "$work/main.tf"
cat > "$work/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "releasekit/release" = "$root/bin"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
tf="${TF_ACC_TERRAFORM_PATH:-terraform}"
cd "$work"
echo "quickstart: terraform apply in $work"
# shellcheck disable=SC2086 # QUICKSTART_ARGS is a list of terraform arguments
"$tf" apply -auto-approve -input=false -var "repository=$RELEASE_TEST_IMAGE_REPOSITORY" \
	-var "haproxy_image=$RELEASE_TEST_HAPROXY_IMAGE" ${QUICKSTART_ARGS:-}
url=$("$tf" output -raw url)
echo "quickstart: production serves $("$tf" output -raw serving)"
echo "quickstart: try it: curl $url"
curl -fsS "$url" || { echo "quickstart: $url does not answer" >&2; exit 1; }

#!/usr/bin/env bash
# Runs the quickstart story with the provider built from this checkout (the
# test stack must be up: `make quickstart` does both):
#
#   1. v1 in staging and production
#   2. the promotion gate refuses v2 in production, which staging has not verified
#   3. v2 through a canary in staging, under traffic
#   4. v2 promoted to production, through its own canary
#   5. rollback by reverting both to v1 (the retained containers start again)
#
# With QUICKSTART_ARGS set, it runs one `terraform apply` with those
# arguments instead, e.g. QUICKSTART_ARGS='-var staging_release=2.0.0'.
# `scripts/quickstart.sh down` destroys what the quickstart released.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state_dir="${RELEASE_STACK_DIR:-/tmp/release-stack}"
# shellcheck disable=SC1091
source "$state_dir/env"

work="$root/.quickstart"
mkdir -p "$work"
cp -r "$root/examples/quickstart/." "$work/"
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
vars=(-var "repository=$RELEASE_TEST_IMAGE_REPOSITORY" -var "haproxy_image=$RELEASE_TEST_HAPROXY_IMAGE")

say() { printf '\n\033[1mquickstart: %s\033[0m\n' "$*"; }
apply() { "$tf" apply -auto-approve -input=false "${vars[@]}" "$@"; }

# dev_overrides need no provider installation (init would look the provider
# up in a registry); the local modules are installed with get.
"$tf" get >/dev/null

if [[ "${1:-}" == "down" ]]; then
	"$tf" destroy -auto-approve -input=false "${vars[@]}"
	exit 0
fi

if [[ -n "${QUICKSTART_ARGS:-}" ]]; then
	# shellcheck disable=SC2086 # QUICKSTART_ARGS is a list of terraform arguments
	apply ${QUICKSTART_ARGS}
	say "$("$tf" output -raw serving)"
	exit 0
fi

say "1/5: v1 in staging and production"
apply -var staging_release=1.0.0 -var production_release=1.0.0
staging_url=$("$tf" output -raw staging_url)
production_url=$("$tf" output -raw production_url)
curl -fsS "$staging_url" && curl -fsS "$production_url"

# A canary is judged on live traffic: a few users on each environment.
pids=()
traffic() {
	local url=$1
	for _ in 1 2 3; do
		(while :; do curl -s -o /dev/null --max-time 5 "$url" || true; sleep 0.01; done) &
		pids+=($!)
	done
}
stop_traffic() { [[ ${#pids[@]} -eq 0 ]] || kill "${pids[@]}" 2>/dev/null || true; }
trap stop_traffic EXIT
traffic "$staging_url"
traffic "$production_url"

say "2/5: the promotion gate: production may not take v2, which staging has not verified"
if out=$("$tf" plan -input=false -no-color "${vars[@]}" -var staging_release=1.0.0 -var production_release=2.0.0 2>&1); then
	echo "$out"
	echo "quickstart: the plan of an unverified digest succeeded; the gate did not hold" >&2
	exit 1
fi
grep -q "Digest Not Verified Upstream" <<<"$out" || { echo "$out"; exit 1; }
sed -n '/Error: Digest Not Verified Upstream/,$p' <<<"$out"

say "3/5: v2 through a canary in staging (watch: curl -s $staging_url)"
apply -var staging_release=2.0.0 -var production_release=1.0.0

say "4/5: v2 promoted to production, which staging verified, through its own canary"
"$tf" plan -input=false -no-color "${vars[@]}" -var staging_release=2.0.0 -var production_release=2.0.0 |
	grep -E '^\s+[~+-] (digest|image|rollout)\b' || true
apply -var staging_release=2.0.0 -var production_release=2.0.0
echo "the analysis of production's canary, as Markdown for a pull request:"
cat canary-report.md

say "5/5: rollback by reverting both to v1 (their retained containers start again: no canary, no pull)"
apply -var staging_release=1.0.0 -var production_release=1.0.0

stop_traffic
say "done: $("$tf" output -raw serving)"
echo "quickstart: staging answers at $staging_url and production at $production_url:"
echo "  curl $production_url"
curl -fsS "$production_url" || { echo "quickstart: $production_url does not answer" >&2; exit 1; }
echo "quickstart: release v2 again with: make quickstart QUICKSTART_ARGS='-var staging_release=2.0.0'"
echo "quickstart: the Terraform working directory is $work"

#!/usr/bin/env bash
# Starts the real services the acceptance tests of terraform-provider-release use,
# all on this machine (loopback and Docker's own bridges; nothing is pulled):
#
#   scripts/stack.sh up       install what is missing and start it (idempotent)
#   scripts/stack.sh env      print the export lines for the tests: eval "$(scripts/stack.sh env)"
#   scripts/stack.sh status   show what runs and who started it
#   scripts/stack.sh down     stop what this script started (nothing else); data is kept
#
# What `up` provides:
#   - Docker Engine: the one that answers `docker info`, else Debian's docker.io, started here
#   - three registries (Debian docker-registry): plain HTTP on RELEASE_TEST_REGISTRY
#     (127.0.0.1:5000), basic auth on RELEASE_TEST_AUTH_REGISTRY (127.0.0.1:5001), and token
#     auth (the bearer flow of GHCR, Docker Hub and GitLab) on RELEASE_TEST_TOKEN_REGISTRY
#     (127.0.0.1:5002), whose token service (scripts/stack/token-issuer, built here) answers
#     on RELEASE_TEST_TOKEN_ISSUER (127.0.0.1:5003); the same user on both
#   - the test application image (testapp/), versions 1.0.0 and 2.0.0; 1.0.0 also in the others
#   - PostgreSQL 15 on 127.0.0.1 and the Docker bridge gateway, port RELEASE_TEST_PG_PORT (55432)
#   - Prometheus 2.42 (Debian's package, unpacked in the state dir, not installed) on
#     RELEASE_TEST_PROMETHEUS_URL (http://127.0.0.1:19090, port RELEASE_TEST_PROMETHEUS_PORT):
#     scrapes every second, through docker_sd_configs, containers labelled release.kind=app
#     (job release-apps, :8080/metrics, series labelled environment, service, track, revision,
#     digest) and release.kind=router (job release-routers, HAProxy's exporter on :8404/metrics,
#     label router); config from scripts/stack/prometheus.yml.in, reloaded when it changes
#   - a Terraform binary (the one on PATH, else built with go install)
#   - a three-node swarm of its own (scripts/stack.sh's "swarm cluster"): three more dockerd in
#     network namespaces release-sw1..3 on bridge relsw0 (10.213.0.0/24; the host is .1, the nodes
#     .11-.13), node 1 the manager (RELEASE_TEST_SWARM3_DOCKER_HOST), pulling from a second listener
#     of the plain registry on 10.213.0.1:5010 (RELEASE_TEST_SWARM3_REGISTRY, same storage)
#   - Swarm mode on that engine, a single-node swarm (`docker swarm init`), unless it is in one
#     already; `down` leaves the swarm only if `up` made it (RELEASE_TEST_SWARM=1 in the env)
#
# State (pidfiles, logs, configs, data) lives in RELEASE_STACK_DIR (/tmp/release-stack).
# Only processes recorded there are ever stopped. Docker's own data stays in Docker's
# default place (/var/lib/docker), the socket is the default one.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_FILES="$ROOT_DIR/scripts/stack"
STATE_DIR=${RELEASE_STACK_DIR:-/tmp/release-stack}
REGISTRY=${RELEASE_TEST_REGISTRY:-127.0.0.1:5000}
AUTH_REGISTRY=${RELEASE_TEST_AUTH_REGISTRY:-127.0.0.1:5001}
AUTH_USER=release
AUTH_PASS=release-test-pass # scripts/stack/htpasswd holds its bcrypt hash
# The token-auth registry and its token service (scripts/stack/token-issuer), same user.
TOKEN_REGISTRY=${RELEASE_TEST_TOKEN_REGISTRY:-127.0.0.1:5002}
TOKEN_ISSUER=${RELEASE_TEST_TOKEN_ISSUER:-127.0.0.1:5003}
TOKEN_SERVICE=release-test-registry
PG_PORT=${RELEASE_TEST_PG_PORT:-55432}
PG_BIN=${RELEASE_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DB=release_test
PG_USER=release
PG_PASS=release-test-pass
CHECK_PORT=${RELEASE_STACK_CHECK_PORT:-18080}
PROM_PORT=${RELEASE_TEST_PROMETHEUS_PORT:-19090}
PROM_ADDR=127.0.0.1:$PROM_PORT
PROM_URL=http://$PROM_ADDR
IMAGE_NAME=releasekit/testapp
TESTAPP_VERSIONS=(1.0.0 2.0.0)
# The Terraform the tests run on, built from source (cached in the state
# directory); the one on PATH (else TERRAFORM_FALLBACK) stays for the tests
# of older Terraform behaviour.
TERRAFORM_VERSION=1.14.3
TERRAFORM_FALLBACK=github.com/hashicorp/terraform@v1.5.7
DEFAULT_DOCKER_HOST=unix:///var/run/docker.sock
# Bump when the way images are built changes, so that `up` rebuilds them.
BUILD_RECIPE=1

# The legacy builder: no buildx plugin is needed, and FROM scratch needs nothing else.
export DOCKER_BUILDKIT=0

log() { printf 'stack: %s\n' "$*" >&2; }

die() {
	log "ERROR: $*"
	exit 1
}

# die_log <log name> <message>: fail and show the end of $STATE_DIR/<log name>.log.
die_log() {
	local f="$STATE_DIR/$1.log"
	log "ERROR: $2"
	if [[ -s $f ]]; then
		log "last lines of $f:"
		tail -n 40 "$f" | sed 's/^/stack:   | /' >&2
	fi
	exit 1
}

# wait_for <seconds> <command...>: true once the command succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

need_root() {
	[[ $EUID -eq 0 ]] || die "$1 needs root; run scripts/stack.sh as root (or start it yourself and run up again)"
}

APT_UPDATED=0
apt_install() {
	need_root "apt-get install $*"
	command -v apt-get >/dev/null || die "apt-get is missing: install $* yourself"
	if ((!APT_UPDATED)); then
		log "apt: apt-get update"
		apt-get update >>"$STATE_DIR/apt.log" 2>&1 || die_log apt "apt-get update failed"
		APT_UPDATED=1
	fi
	log "apt: apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$STATE_DIR/apt.log" 2>&1 ||
		die_log apt "apt-get install $* failed"
}

# ---------------------------------------------------------------------------
# Processes: a pidfile holds "<pid> <start time>", so a reused pid never matches.

pid_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) } # drop "pid (comm) ", comm may hold spaces
	awk '{print $20}' <<<"$stat"
}

# recorded_pid <name>: prints the pid if the process this script recorded still runs.
recorded_pid() {
	local f="$STATE_DIR/$1.pid" pid="" st=""
	[[ -f $f ]] || return 1
	read -r pid st <"$f" || true
	[[ -n $pid && -n $st ]] || return 1
	[[ "$(pid_starttime "$pid")" == "$st" ]] || return 1
	echo "$pid"
}

# start_daemon <name> <command...>: runs it in its own session, output to <name>.log.
start_daemon() {
	local name=$1 pidf="$STATE_DIR/$1.pid" logf="$STATE_DIR/$1.log" pid
	shift
	rm -f "$pidf" "$pidf.tmp"
	printf -- '---- %s stack.sh starting: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$logf"
	# In its own session, with no descriptor of ours but the log (a caller's pipe would
	# otherwise stay open for as long as the daemon runs). The wrapper writes its own
	# pid and execs the daemon, so the recorded pid is the daemon's.
	(
		cd "$STATE_DIR"
		# shellcheck disable=SC2016 # expanded by the wrapper, not here
		exec nohup setsid bash -c '
			for fd in /proc/$$/fd/*; do
				fd=${fd##*/}
				[[ $fd -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null
			done
			echo $$ >"$0.tmp"
			exec "$@"' "$pidf" "$@"
	) >>"$logf" 2>&1 </dev/null &
	for _ in $(seq 100); do
		[[ -s $pidf.tmp ]] && break
		sleep 0.05
	done
	[[ -s $pidf.tmp ]] || die_log "$name" "$name: could not start"
	pid=$(<"$pidf.tmp")
	rm -f "$pidf.tmp"
	echo "$pid $(pid_starttime "$pid")" >"$pidf"
	log "$name: started pid $pid (log $logf)"
}

# stop_daemon <name> [signal] [seconds]: stops the recorded process, SIGKILL after the wait.
stop_daemon() {
	local name=$1 sig=${2:-TERM} secs=${3:-30} pid
	if ! pid=$(recorded_pid "$name"); then
		if [[ -f $STATE_DIR/$name.pid ]]; then
			log "$name: not running (stale pidfile removed)"
			rm -f "$STATE_DIR/$name.pid"
		fi
		return 0
	fi
	log "$name: stopping pid $pid (SIG$sig)"
	kill -s "$sig" "$pid" 2>/dev/null || true
	if ! wait_for "$secs" eval "! recorded_pid $name"; then
		log "$name: still running after ${secs}s, sending SIGKILL to pid $pid"
		kill -s KILL "$pid" 2>/dev/null || true
		wait_for 10 eval "! recorded_pid $name" || die "$name: pid $pid does not stop"
	fi
	rm -f "$STATE_DIR/$name.pid"
	log "$name: stopped"
}

# ---------------------------------------------------------------------------
# 1. Docker Engine

docker_ok() { timeout 15 docker info >/dev/null 2>&1; }

ensure_docker() {
	local pid
	command -v docker >/dev/null || apt_install docker.io
	if docker_ok; then
		if pid=$(recorded_pid dockerd); then
			log "docker: dockerd pid $pid (started by this script) answers"
		else
			log "docker: using the Docker Engine that answers (not started by this script)"
		fi
	elif pid=$(recorded_pid dockerd); then
		log "docker: dockerd pid $pid (started by this script) does not answer yet, waiting"
		wait_for 60 docker_ok || die_log dockerd "dockerd pid $pid does not answer 'docker info'"
	else
		need_root "starting dockerd"
		[[ -z ${DOCKER_HOST:-} || $DOCKER_HOST == "$DEFAULT_DOCKER_HOST" ]] ||
			die "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to let this script start a local dockerd"
		command -v dockerd >/dev/null || apt_install docker.io
		# dockerd needs iptables for bridge networks and published ports.
		command -v iptables >/dev/null || apt_install iptables
		# shellcheck disable=SC2086 # RELEASE_STACK_DOCKERD_FLAGS is a list of flags
		start_daemon dockerd dockerd --host="$DEFAULT_DOCKER_HOST" ${RELEASE_STACK_DOCKERD_FLAGS:-}
		local deadline=$((SECONDS + 60))
		until docker_ok; do
			recorded_pid dockerd >/dev/null || die_log dockerd "dockerd exited"
			((SECONDS < deadline)) || die_log dockerd "dockerd does not answer 'docker info' after 60s"
			sleep 0.5
		done
		log "docker: dockerd answers"
	fi

	# Pin the endpoint for everything below (and for the tests).
	if [[ -z ${DOCKER_HOST:-} ]]; then
		DOCKER_HOST=$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null || true)
		DOCKER_HOST=${DOCKER_HOST:-$DEFAULT_DOCKER_HOST}
	fi
	export DOCKER_HOST

	# The CLI negotiates the API version; if an old engine still refuses it, pin 1.41 (Engine 20.10).
	local out
	if ! out=$(docker version --format '{{.Server.APIVersion}}' 2>&1); then
		if [[ $out == *"too new"* || $out == *"API version"* ]]; then
			export DOCKER_API_VERSION=1.41
			log "docker: the CLI does not negotiate with this engine, using DOCKER_API_VERSION=1.41"
			docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1 || die "docker version fails: $out"
		else
			die "docker version fails: $out"
		fi
	fi
	log "docker: engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') at $DOCKER_HOST"

	DOCKER_GATEWAY=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
	if [[ -z $DOCKER_GATEWAY ]]; then
		DOCKER_GATEWAY=$(ip -4 -o addr show docker0 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
	fi
	[[ -n $DOCKER_GATEWAY ]] || die "docker: cannot find the gateway IP of the default bridge network"
	log "docker: bridge gateway $DOCKER_GATEWAY"
}

# ---------------------------------------------------------------------------
# 2. Registries

# registry_probe <addr>: prints the HTTP status of GET /v2/, "refused" or "error:<curl exit>".
registry_probe() {
	local code rc=0
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$1/v2/") || rc=$?
	if ((rc == 7)); then
		echo refused
	elif ((rc != 0)); then
		echo "error:curl exit $rc"
	else
		echo "$code"
	fi
}

# ensure_registry <name> <addr> <expected /v2/ status> <env var> [auth]
# ensure_registry <name> <addr> <GET /v2/ status> <env var> [auth] [data dir, default its own]
ensure_registry() {
	local name=$1 addr=$2 want=$3 var=$4 auth=${5:-} data=${6:-} st pid
	[[ $addr == 127.* || -n $data ]] ||
		log "$name: WARNING: $var=$addr is not a loopback address; Docker pushes plain HTTP only to 127.0.0.0/8 unless configured"
	st=$(registry_probe "$addr")
	if [[ $st == "$want" ]]; then
		if pid=$(recorded_pid "$name"); then
			log "$name: running (pid $pid) on http://$addr"
		else
			log "$name: reusing the registry that answers on http://$addr (not started by this script)"
		fi
		return 0
	fi
	if [[ $st != refused ]]; then
		if pid=$(recorded_pid "$name"); then
			log "$name: pid $pid (started by this script) answers GET /v2/ with $st, restarting it"
			stop_daemon "$name"
		else
			die "$name: $addr is taken by something that is not the expected registry (GET http://$addr/v2/ gives $st, want $want); set $var to a free 127.0.0.1:<port>"
		fi
	elif pid=$(recorded_pid "$name"); then
		log "$name: pid $pid (started by this script) does not listen on $addr, restarting it"
		stop_daemon "$name"
	fi

	[[ -x /usr/bin/docker-registry ]] || apt_install docker-registry
	# The package may have started its own service on the port meanwhile.
	st=$(registry_probe "$addr")
	if [[ $st == "$want" ]]; then
		log "$name: reusing the registry that answers on http://$addr (not started by this script)"
		return 0
	fi

	local dir="$STATE_DIR/$name" cfg auth_block=""
	data=${data:-$dir/data}
	mkdir -p "$dir" "$data"
	if [[ $auth == token ]]; then
		auth_block=$(printf 'auth:\n  token:\n    realm: http://%s/token\n    service: %s\n    issuer: release-test-issuer\n    rootcertbundle: %s' \
			"$TOKEN_ISSUER" "$TOKEN_SERVICE" "$STATE_DIR/token-issuer/cert.pem")
	elif [[ -n $auth ]]; then
		install -m 0644 "$STACK_FILES/htpasswd" "$dir/htpasswd"
		auth_block=$(printf 'auth:\n  htpasswd:\n    realm: release-test\n    path: %s' "$dir/htpasswd")
	fi
	cfg=$(<"$STACK_FILES/registry.yml.in")
	cfg=${cfg//@NAME@/$name}
	cfg=${cfg//@ADDR@/$addr}
	cfg=${cfg//@ROOT@/$data}
	cfg=${cfg//@SECRET@/release-stack-$name}
	cfg=${cfg//@AUTH@/$auth_block}
	printf '%s\n' "$cfg" >"$dir/config.yml"

	start_daemon "$name" /usr/bin/docker-registry serve "$dir/config.yml"
	local deadline=$((SECONDS + 30))
	until [[ $(registry_probe "$addr") == "$want" ]]; do
		recorded_pid "$name" >/dev/null || die_log "$name" "$name exited"
		((SECONDS < deadline)) || die_log "$name" "$name does not answer on http://$addr/v2/ after 30s"
		sleep 0.3
	done
	log "$name: answers on http://$addr (GET /v2/ -> $want)"
}

ensure_registries() {
	ensure_registry registry "$REGISTRY" 200 RELEASE_TEST_REGISTRY
	ensure_registry registry-auth "$AUTH_REGISTRY" 401 RELEASE_TEST_AUTH_REGISTRY auth
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -u "$AUTH_USER:$AUTH_PASS" "http://$AUTH_REGISTRY/v2/") == 200 ]] ||
		die "registry-auth: http://$AUTH_REGISTRY does not accept $AUTH_USER/$AUTH_PASS; set RELEASE_TEST_AUTH_REGISTRY to a free port"
	ensure_token_issuer
	ensure_registry registry-token "$TOKEN_REGISTRY" 401 RELEASE_TEST_TOKEN_REGISTRY token
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $(registry_token pull)" "http://$TOKEN_REGISTRY/v2/") == 200 ]] ||
		die "registry-token: http://$TOKEN_REGISTRY does not accept a token of $TOKEN_ISSUER; set RELEASE_TEST_TOKEN_REGISTRY and RELEASE_TEST_TOKEN_ISSUER to free ports"
}

issuer_probe() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$TOKEN_ISSUER/token" || true
}

# ensure_token_issuer: the token service of the token-auth registry, built from
# scripts/stack/token-issuer; its key and certificate live in the state dir.
ensure_token_issuer() {
	local name=token-issuer dir="$STATE_DIR/token-issuer" st
	st=$(issuer_probe)
	if [[ $st == 401 ]] && recorded_pid "$name" >/dev/null; then
		log "$name: running (pid $(recorded_pid "$name")) on http://$TOKEN_ISSUER"
		return 0
	fi
	if recorded_pid "$name" >/dev/null; then
		stop_daemon "$name"
		st=$(issuer_probe)
	fi
	[[ $st == 000 ]] || die "$name: $TOKEN_ISSUER is taken (GET /token gives $st); set RELEASE_TEST_TOKEN_ISSUER to a free 127.0.0.1:<port>"
	mkdir -p "$dir"
	command -v go >/dev/null || die "$name: go is not on PATH"
	(cd "$ROOT_DIR" && go build -o "$dir/token-issuer" ./scripts/stack/token-issuer) >"$STATE_DIR/token-issuer-build.log" 2>&1 ||
		die_log token-issuer-build "$name: go build failed"
	start_daemon "$name" "$dir/token-issuer" -addr "$TOKEN_ISSUER" -dir "$dir" -user "$AUTH_USER" -password "$AUTH_PASS"
	wait_for 30 eval '[[ $(issuer_probe) == 401 ]]' || die_log "$name" "$name does not answer on http://$TOKEN_ISSUER/token after 30s"
	log "$name: answers on http://$TOKEN_ISSUER/token"
}

# registry_token <actions>: a token of the token service for the test image.
registry_token() {
	curl -s --max-time 5 -u "$AUTH_USER:$AUTH_PASS" \
		"http://$TOKEN_ISSUER/token?service=$TOKEN_SERVICE&scope=repository:$IMAGE_NAME:$1" |
		sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}

# ---------------------------------------------------------------------------
# 3. The test application image

testapp_hash() {
	(
		cd "$ROOT_DIR/testapp"
		echo "recipe $BUILD_RECIPE $(go version) ${TESTAPP_VERSIONS[*]} $REGISTRY $AUTH_REGISTRY"
		find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name Dockerfile \) ! -name '*_test.go' -print0 |
			LC_ALL=C sort -z | xargs -0 sha256sum
	) | sha256sum | cut -d' ' -f1
}

# manifest_digest <registry> <tag> [user:password]: the digest the registry reports.
manifest_digest() {
	local reg=$1 tag=$2 cred=${3:-}
	local args=(-sfI --max-time 10
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json'
		-H 'Accept: application/vnd.oci.image.manifest.v1+json'
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json'
		-H 'Accept: application/vnd.oci.image.index.v1+json')
	case $cred in
	"") ;;
	Bearer\ *) args+=(-H "Authorization: $cred") ;;
	*) args+=(-u "$cred") ;;
	esac
	curl "${args[@]}" "http://$reg/v2/$IMAGE_NAME/manifests/$tag" | tr -d '\r' |
		awk 'tolower($0) ~ /^docker-content-digest:/ {sub(/^[^:]*: */, ""); print}'
}

# current_digests: "v1 v2 auth-v1" as the registries report them now.
current_digests() {
	local v1 v2 a1
	v1=$(manifest_digest "$REGISTRY" "${TESTAPP_VERSIONS[0]}" || true)
	v2=$(manifest_digest "$REGISTRY" "${TESTAPP_VERSIONS[1]}" || true)
	a1=$(manifest_digest "$AUTH_REGISTRY" "${TESTAPP_VERSIONS[0]}" "$AUTH_USER:$AUTH_PASS" || true)
	echo "${v1:--} ${v2:--} ${a1:--}"
}

ensure_images() {
	local hash digests
	command -v go >/dev/null || die "testapp: go is not on PATH"
	hash=$(testapp_hash)
	digests=$(current_digests)
	if [[ -f $STATE_DIR/testapp.hash && $(<"$STATE_DIR/testapp.hash") == "$hash" &&
		-f $STATE_DIR/testapp.digests && $(<"$STATE_DIR/testapp.digests") == "$digests" && $digests != *-* ]]; then
		log "testapp: images up to date (source ${hash:0:12})"
		read -r IMAGE_V1_DIGEST IMAGE_V2_DIGEST _ <<<"$digests"
		return 0
	fi

	log "testapp: building images for ${TESTAPP_VERSIONS[*]} (source ${hash:0:12})"
	local blog="$STATE_DIR/testapp-build.log" ctx arch v
	: >"$blog"
	ctx=$(mktemp -d "$STATE_DIR/build.XXXXXX")
	arch=$(docker version --format '{{.Server.Arch}}' 2>/dev/null || go env GOARCH)
	for v in "${TESTAPP_VERSIONS[@]}"; do
		mkdir -p "$ctx/$v"
		(cd "$ROOT_DIR/testapp" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -buildvcs=false -trimpath \
			-ldflags "-s -w -X main.defaultVersion=$v" -o "$ctx/$v/app" .) >>"$blog" 2>&1 ||
			die_log testapp-build "testapp: go build failed"
		cp "$ROOT_DIR/testapp/Dockerfile" "$ctx/$v/Dockerfile"
		docker build --build-arg "APP_VERSION=$v" -t "$REGISTRY/$IMAGE_NAME:$v" "$ctx/$v" >>"$blog" 2>&1 ||
			die_log testapp-build "testapp: docker build $v failed"
		docker push "$REGISTRY/$IMAGE_NAME:$v" >>"$blog" 2>&1 ||
			die_log testapp-build "testapp: docker push $REGISTRY/$IMAGE_NAME:$v failed"
		log "testapp: pushed $REGISTRY/$IMAGE_NAME:$v"
	done
	rm -rf "$ctx"

	# The authenticated registry, with a throwaway client config: ~/.docker is never touched.
	local dcfg v1=${TESTAPP_VERSIONS[0]}
	dcfg=$(mktemp -d "$STATE_DIR/docker-config.XXXXXX")
	docker tag "$REGISTRY/$IMAGE_NAME:$v1" "$AUTH_REGISTRY/$IMAGE_NAME:$v1"
	if ! printf '%s' "$AUTH_PASS" | DOCKER_CONFIG=$dcfg docker login -u "$AUTH_USER" --password-stdin "$AUTH_REGISTRY" >>"$blog" 2>&1 ||
		! DOCKER_CONFIG=$dcfg docker push "$AUTH_REGISTRY/$IMAGE_NAME:$v1" >>"$blog" 2>&1; then
		rm -rf "$dcfg"
		die_log testapp-build "testapp: push to $AUTH_REGISTRY failed"
	fi
	rm -rf "$dcfg"
	log "testapp: pushed $AUTH_REGISTRY/$IMAGE_NAME:$v1"

	digests=$(current_digests)
	local a1
	read -r IMAGE_V1_DIGEST IMAGE_V2_DIGEST a1 <<<"$digests"
	[[ $IMAGE_V1_DIGEST == sha256:* && $IMAGE_V2_DIGEST == sha256:* && $a1 == sha256:* ]] ||
		die "testapp: the registries do not report the pushed digests ($digests)"
	[[ $IMAGE_V1_DIGEST != "$IMAGE_V2_DIGEST" ]] || die "testapp: both versions have the same digest $IMAGE_V1_DIGEST"
	[[ $a1 == "$IMAGE_V1_DIGEST" ]] || log "testapp: note: $AUTH_REGISTRY has $v1 as $a1, $REGISTRY as $IMAGE_V1_DIGEST"
	echo "$digests" >"$STATE_DIR/testapp.digests"
	echo "$hash" >"$STATE_DIR/testapp.hash"
	log "testapp: ${TESTAPP_VERSIONS[0]} $IMAGE_V1_DIGEST"
	log "testapp: ${TESTAPP_VERSIONS[1]} $IMAGE_V2_DIGEST"
}

# ensure_token_image: the first version in the token-auth registry, pushed by a
# Docker Engine that logs in and takes its tokens from the token service.
ensure_token_image() {
	local v1=${TESTAPP_VERSIONS[0]} d dcfg blog="$STATE_DIR/testapp-build.log"
	d=$(manifest_digest "$TOKEN_REGISTRY" "$v1" "Bearer $(registry_token pull)" || true)
	if [[ $d == "$IMAGE_V1_DIGEST" ]]; then
		log "testapp: $TOKEN_REGISTRY has $v1"
		return 0
	fi
	dcfg=$(mktemp -d "$STATE_DIR/docker-config.XXXXXX")
	docker tag "$REGISTRY/$IMAGE_NAME:$v1" "$TOKEN_REGISTRY/$IMAGE_NAME:$v1"
	if ! printf '%s' "$AUTH_PASS" | DOCKER_CONFIG=$dcfg docker login -u "$AUTH_USER" --password-stdin "$TOKEN_REGISTRY" >>"$blog" 2>&1 ||
		! DOCKER_CONFIG=$dcfg docker push "$TOKEN_REGISTRY/$IMAGE_NAME:$v1" >>"$blog" 2>&1; then
		rm -rf "$dcfg"
		die_log testapp-build "testapp: push to $TOKEN_REGISTRY failed"
	fi
	rm -rf "$dcfg"
	d=$(manifest_digest "$TOKEN_REGISTRY" "$v1" "Bearer $(registry_token pull)" || true)
	[[ $d == "$IMAGE_V1_DIGEST" ]] || die "testapp: $TOKEN_REGISTRY reports $v1 as ${d:-nothing}, $REGISTRY as $IMAGE_V1_DIGEST"
	log "testapp: pushed $TOKEN_REGISTRY/$IMAGE_NAME:$v1"
}

# ---------------------------------------------------------------------------
# PostgreSQL: a cluster of its own in the state dir, on loopback and the bridge gateway.

PG_RUN_USER=""

# as_pg <command...>: runs it as the cluster's owner (initdb and postgres refuse root).
as_pg() {
	if [[ -n $PG_RUN_USER ]]; then
		setpriv --reuid="$PG_RUN_USER" --regid="$(id -g "$PG_RUN_USER")" --init-groups "$@"
	else
		"$@"
	fi
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

pg_psql() {
	PGPASSWORD=$PG_PASS PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$@"
}

ensure_postgres() {
	local dir="$STATE_DIR/postgres" pid
	local data="$dir/data" plog="$STATE_DIR/postgres.log"
	if [[ $EUID -eq 0 ]]; then
		PG_RUN_USER=postgres
		id postgres >/dev/null 2>&1 || die "postgres: there is no 'postgres' user to run the cluster as (initdb refuses root)"
	fi
	[[ -x $PG_BIN/postgres ]] || apt_install postgresql-15

	if pid=$(recorded_pid postgres); then
		if pg_ready; then
			log "postgres: running (pid $pid) on 127.0.0.1:$PG_PORT"
		else
			wait_for 30 pg_ready || die_log postgres "postgres pid $pid does not answer on 127.0.0.1:$PG_PORT"
		fi
		# Docker's bridge may have changed since it started.
		if ! grep 'stack.sh starting' "$plog" 2>/dev/null | tail -n1 | grep -q "listen_addresses=127.0.0.1,$DOCKER_GATEWAY "; then
			log "postgres: the bridge gateway is now $DOCKER_GATEWAY, restarting to listen on it"
			stop_daemon postgres INT
		fi
	fi
	if ! recorded_pid postgres >/dev/null; then
		if ss -Hltn "sport = :$PG_PORT" 2>/dev/null | grep -q .; then
			die "postgres: port $PG_PORT is taken by a server this script did not start; set RELEASE_TEST_PG_PORT to a free port"
		fi
		if [[ ! -s $data/PG_VERSION ]]; then
			log "postgres: initdb $data"
			rm -rf "$data"
			mkdir -p "$dir/run"
			printf '%s\n' "$PG_PASS" >"$dir/pwfile"
			[[ -z $PG_RUN_USER ]] || chown -R "$PG_RUN_USER:" "$dir"
			chmod 0700 "$dir"
			(cd "$dir" && as_pg "$PG_BIN/initdb" -D "$data" -U "$PG_USER" --pwfile="$dir/pwfile" -E UTF8 --no-locale \
				--auth-local=trust --auth-host=scram-sha-256) >>"$plog" 2>&1 || die_log postgres "initdb failed"
			rm -f "$dir/pwfile"
			# Containers connect from Docker's networks to the gateway address.
			printf 'host all all 0.0.0.0/0 scram-sha-256\n' >>"$data/pg_hba.conf"
		fi
		mkdir -p "$dir/run"
		[[ -z $PG_RUN_USER ]] || chown "$PG_RUN_USER:" "$dir/run"
		local runner=()
		[[ -z $PG_RUN_USER ]] || runner=(setpriv --reuid="$PG_RUN_USER" --regid="$(id -g "$PG_RUN_USER")" --init-groups)
		# Test data: durability is not needed, speed is.
		start_daemon postgres "${runner[@]}" "$PG_BIN/postgres" -D "$data" -p "$PG_PORT" \
			-c "listen_addresses=127.0.0.1,$DOCKER_GATEWAY" -c "unix_socket_directories=$dir/run" \
			-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200
		local deadline=$((SECONDS + 30))
		until pg_ready; do
			recorded_pid postgres >/dev/null || die_log postgres "postgres exited"
			((SECONDS < deadline)) || die_log postgres "postgres does not answer on 127.0.0.1:$PG_PORT after 30s"
			sleep 0.3
		done
		log "postgres: answers on 127.0.0.1:$PG_PORT and $DOCKER_GATEWAY:$PG_PORT"
	fi
	if [[ -z $(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ]]; then
		pg_psql -d postgres -c "CREATE DATABASE $PG_DB" || die "postgres: CREATE DATABASE $PG_DB failed"
		log "postgres: created database $PG_DB"
	fi
	DATABASE_URL="postgres://$PG_USER:$PG_PASS@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable"
	DATABASE_URL_CONTAINER="postgres://$PG_USER:$PG_PASS@$DOCKER_GATEWAY:$PG_PORT/$PG_DB?sslmode=disable"
}

# ---------------------------------------------------------------------------
# Checks that the tests' assumptions hold: published ports answer on loopback, containers
# reach each other by name on a user-defined network, and reach the host on the gateway.

check_docker_networking() {
	local net=release-stack-check-$CHECK_PORT app=release-stack-check-app-$CHECK_PORT img="$REGISTRY/$IMAGE_NAME:${TESTAPP_VERSIONS[0]}"
	local clog="$STATE_DIR/check.log" body out
	: >"$clog"
	cleanup_check() {
		docker rm -f "$app" >/dev/null 2>&1 || true
		docker network rm "$net" >/dev/null 2>&1 || true
	}
	cleanup_check
	docker network create "$net" >>"$clog" 2>&1 || die_log check "check: docker network create failed"
	if ! docker run -d --name "$app" --network "$net" -p "127.0.0.1:$CHECK_PORT:8080" -e APP_VERSION=stack-check "$img" >>"$clog" 2>&1; then
		cleanup_check
		die_log check "check: cannot run a container with -p 127.0.0.1:$CHECK_PORT:8080 (set RELEASE_STACK_CHECK_PORT if the port is taken)"
	fi
	if ! wait_for 15 curl -sf --max-time 2 "http://127.0.0.1:$CHECK_PORT/healthz"; then
		docker logs "$app" >>"$clog" 2>&1 || true
		cleanup_check
		die_log check "check: a published port (127.0.0.1:$CHECK_PORT -> 8080) does not answer"
	fi
	body=$(curl -s --max-time 5 "http://127.0.0.1:$CHECK_PORT/")
	[[ $body == version=stack-check* ]] || {
		cleanup_check
		die "check: unexpected answer from the published port: $body"
	}
	if ! out=$(docker run --rm --network "$net" "$img" healthcheck "http://$app:8080/healthz" 2>&1); then
		echo "$out" >>"$clog"
		cleanup_check
		die_log check "check: a container cannot reach another by name on a user-defined network"
	fi
	if [[ -n ${DATABASE_URL_CONTAINER:-} ]]; then
		local mig=(docker run --rm --network "$net" -e "DATABASE_URL=$DATABASE_URL_CONTAINER" -e MIGRATION_VERSION=stack-check
			-e MIGRATE_CONNECT_TIMEOUT=5s "$img" migrate)
		if ! "${mig[@]}" up >>"$clog" 2>&1 || ! "${mig[@]}" down >>"$clog" 2>&1; then
			cleanup_check
			die_log check "check: a container cannot run 'migrate up/down' against PostgreSQL on $DOCKER_GATEWAY:$PG_PORT"
		fi
	fi
	cleanup_check
	log "check: published port, container to container, container to host gateway${DATABASE_URL_CONTAINER:+ (PostgreSQL migrate up/down)}: ok"
}

# ---------------------------------------------------------------------------
# Swarm mode: environments with `swarm` run services on the engine's swarm.

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

# swarm_address: the IPv4 address of the interface of the default route (Swarm refuses a
# loopback address), else the bridge gateway.
swarm_address() {
	local dev addr=""
	dev=$(ip -4 -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
	[[ -z $dev ]] || addr=$(ip -4 -o addr show dev "$dev" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
	echo "${addr:-$DOCKER_GATEWAY}"
}

ensure_swarm() {
	local state addr
	state=$(swarm_state)
	if [[ $state != active && $state != inactive && -f $STATE_DIR/swarm.initialized ]]; then
		# The swarm this script made did not come back (an engine restarted on another address).
		log "swarm: the swarm this script made is $state; leaving it to make it again"
		docker swarm leave --force >>"$STATE_DIR/swarm.log" 2>&1 || true
		state=$(swarm_state)
	fi
	case $state in
	active)
		if [[ -f $STATE_DIR/swarm.initialized ]]; then
			log "swarm: the single-node swarm this script made is active"
		else
			log "swarm: the engine is in a swarm already (not made by this script)"
		fi
		;;
	inactive)
		addr=$(swarm_address)
		docker swarm init --advertise-addr "$addr" >"$STATE_DIR/swarm.log" 2>&1 || die_log swarm "docker swarm init --advertise-addr $addr failed"
		touch "$STATE_DIR/swarm.initialized"
		log "swarm: single-node swarm initialised (advertised on $addr)"
		;;
	*) die "swarm: the engine's swarm state is $state; wait for it to settle, or run 'docker swarm leave --force'" ;;
	esac
}

leave_swarm() {
	[[ -f $STATE_DIR/swarm.initialized ]] || return 0
	if docker_ok && [[ $(swarm_state) == active ]]; then
		docker swarm leave --force >>"$STATE_DIR/swarm.log" 2>&1 || log "swarm: 'docker swarm leave --force' failed (see $STATE_DIR/swarm.log)"
	fi
	rm -f "$STATE_DIR/swarm.initialized"
	log "swarm: left the swarm this script made"
}

# ---------------------------------------------------------------------------
# A three-node swarm of its own: engines in network namespaces.

SW_BRIDGE=relsw0
SW_NET=10.213.0
SW_NODES=(1 2 3)
SW_REGISTRY=$SW_NET.1:5010

sw_dir() { echo "$STATE_DIR/swarm-cluster/sw$1"; }
sw_sock() { echo "unix://$(sw_dir "$1")/docker.sock"; }
sw_docker() {
	local n=$1
	shift
	DOCKER_HOST=$(sw_sock "$n") docker "$@"
}
sw_ok() { timeout 10 env DOCKER_HOST="$(sw_sock "$1")" docker info >/dev/null 2>&1; }

ensure_cluster_network() {
	local n ns
	if ! ip link show "$SW_BRIDGE" >/dev/null 2>&1; then
		ip link add "$SW_BRIDGE" type bridge
		ip addr add "$SW_NET.1/24" dev "$SW_BRIDGE"
		ip link set "$SW_BRIDGE" up
	fi
	for n in "${SW_NODES[@]}"; do
		ns=release-sw$n
		[[ -e /var/run/netns/$ns ]] || ip netns add "$ns"
		if ! ip link show "relsw$n-h" >/dev/null 2>&1; then
			ip link add "relsw$n-h" type veth peer name "relsw$n-n"
			ip link set "relsw$n-n" netns "$ns"
			ip link set "relsw$n-h" master "$SW_BRIDGE" up
			ip -n "$ns" addr add "$SW_NET.1$n/24" dev "relsw$n-n"
			ip -n "$ns" link set "relsw$n-n" up
			ip -n "$ns" link set lo up
			ip -n "$ns" route add default via "$SW_NET.1"
		fi
	done
	# The host's FORWARD policy is DROP: traffic between the nodes crosses the bridge.
	iptables -C DOCKER-USER -i "$SW_BRIDGE" -o "$SW_BRIDGE" -j ACCEPT 2>/dev/null ||
		iptables -I DOCKER-USER -i "$SW_BRIDGE" -o "$SW_BRIDGE" -j ACCEPT
}

ensure_cluster_engines() {
	local n dir
	for n in "${SW_NODES[@]}"; do
		dir=$(sw_dir "$n")
		mkdir -p "$dir"
		if sw_ok "$n"; then continue; fi
		if ! recorded_pid "swarm-sw$n" >/dev/null; then
			# Its own network and hostname; the host's cgroups and /sys, so that it runs containers.
			start_daemon "swarm-sw$n" unshare --uts sh -c 'hostname "$0" && exec nsenter --net=/var/run/netns/release-$0 "$@"' "sw$n" \
				dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" -H "$(sw_sock "$n")" \
				--insecure-registry "$SW_REGISTRY"
		fi
	done
	for n in "${SW_NODES[@]}"; do
		wait_for 60 sw_ok "$n" || die_log "swarm-sw$n" "the engine of swarm node sw$n does not answer"
	done
}

ensure_cluster_swarm() {
	local n state token
	state=$(sw_docker 1 info --format '{{.Swarm.LocalNodeState}}')
	if [[ $state != active ]]; then
		sw_docker 1 swarm init --advertise-addr "$SW_NET.11" >>"$STATE_DIR/swarm-sw1.log" 2>&1 || die_log swarm-sw1 "swarm init on sw1 failed"
	fi
	token=$(sw_docker 1 swarm join-token -q worker)
	for n in "${SW_NODES[@]:1}"; do
		state=$(sw_docker "$n" info --format '{{.Swarm.LocalNodeState}}')
		[[ $state == active ]] && continue
		sw_docker "$n" swarm join --token "$token" --advertise-addr "$SW_NET.1$n" "$SW_NET.11:2377" >>"$STATE_DIR/swarm-sw$n.log" 2>&1 ||
			die_log "swarm-sw$n" "sw$n could not join the swarm of sw1"
	done
	wait_for 60 eval '[[ $(sw_docker 1 node ls --filter role=worker --format "{{.Status}}" | grep -c Ready) -ge 2 ]]' ||
		die "swarm cluster: the workers are not Ready: $(sw_docker 1 node ls 2>&1)"
	# Nodes that left for good (a node's data removed) stay listed Down: drop them.
	sw_docker 1 node ls --format '{{.ID}} {{.Status}}' | awk '$2 == "Down" {print $1}' | xargs -r -n1 env DOCKER_HOST="$(sw_sock 1)" docker node rm --force >/dev/null 2>&1 || true
	for n in "${SW_NODES[@]}"; do
		sw_docker 1 node update --availability active "sw$n" >/dev/null 2>&1 || true
	done
}

# The router image on the manager: the cluster pulls it, as the tests' images, from the second listener.
ensure_swarm_cluster() {
	need_root "making the three-node swarm"
	ensure_cluster_network
	ensure_registry registry-cluster "$SW_REGISTRY" 200 RELEASE_TEST_SWARM3_REGISTRY "" "$STATE_DIR/registry/data"
	ensure_cluster_engines
	ensure_cluster_swarm
	log "swarm cluster: $(sw_docker 1 node ls --format '{{.Hostname}} {{.ManagerStatus}} {{.Status}}' | tr '\n' ';')"
}

# The cluster goes whole, data too: the next up makes a fresh swarm, whose overlay works at
# once (engines restarted on their old swarm state took minutes before a task on one node
# reached a task on another).
stop_swarm_cluster() {
	local n
	for n in 3 2 1; do
		stop_daemon "swarm-sw$n" TERM 60
	done
	stop_daemon registry-cluster TERM 15
	[[ $EUID -eq 0 ]] || return 0
	for n in "${SW_NODES[@]}"; do
		ip link del "relsw$n-h" 2>/dev/null || true
		ip netns del "release-sw$n" 2>/dev/null || true
	done
	ip link del "$SW_BRIDGE" 2>/dev/null || true
	iptables -D DOCKER-USER -i "$SW_BRIDGE" -o "$SW_BRIDGE" -j ACCEPT 2>/dev/null || true
	rm -rf "$STATE_DIR/swarm-cluster"
	log "swarm cluster: stopped, its network and data removed"
}

# ---------------------------------------------------------------------------
# Services the later tests need: the router image and Prometheus.

ensure_haproxy_image() {
	# The router image of the tests: Debian's haproxy binary and the libraries ldd lists,
	# FROM scratch, laid out like the official image (haproxy on PATH in /usr/local/sbin).
	# The package is downloaded and unpacked, not installed, so no haproxy service is started.
	HAPROXY_IMAGE="$REGISTRY/releasekit/haproxy:2.6"
	local dir="$STATE_DIR/haproxy" bin
	if docker image inspect "$HAPROXY_IMAGE" >/dev/null 2>&1 && [[ -f $dir/built ]]; then
		log "haproxy: image $HAPROXY_IMAGE up to date"
		return 0
	fi
	rm -rf "$dir" && mkdir -p "$dir/deb" "$dir/root/usr/local/sbin" "$dir/root/usr/local/etc/haproxy/release" "$dir/root/tmp"
	if [[ -x /usr/sbin/haproxy && -z ${RELEASE_STACK_HAPROXY_DOWNLOAD:-} ]]; then
		bin=/usr/sbin/haproxy
	else
		if ((!APT_UPDATED)); then
			need_root "apt-get update"
			apt-get update >>"$STATE_DIR/apt.log" 2>&1 || die_log apt "apt-get update failed"
			APT_UPDATED=1
		fi
		(cd "$dir/deb" && apt-get download haproxy >>"$STATE_DIR/apt.log" 2>&1) || die_log apt "apt-get download haproxy failed"
		dpkg-deb -x "$dir"/deb/haproxy_*.deb "$dir/deb/x"
		bin="$dir/deb/x/usr/sbin/haproxy"
		# Its shared libraries (packages named lib*), without the package's scripts and service.
		local deps
		deps=$(dpkg-deb -f "$dir"/deb/haproxy_*.deb Depends | tr ',' '\n' | sed 's/(.*//; s/|.*//; s/ //g' | grep '^lib' || true)
		# shellcheck disable=SC2086 # a list of package names
		[[ -z $deps ]] || apt_install $deps
	fi
	cp "$bin" "$dir/root/usr/local/sbin/haproxy"
	local lib
	for lib in $(ldd "$bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
		mkdir -p "$dir/root$(dirname "$lib")"
		cp -L "$lib" "$dir/root$lib"
	done
	cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
ENV PATH=/usr/local/sbin:/usr/sbin:/bin
STOPSIGNAL SIGUSR1
ENTRYPOINT ["haproxy"]
CMD ["-W", "-db", "-f", "/usr/local/etc/haproxy/release"]
DOCKERFILE
	docker build -t "$HAPROXY_IMAGE" "$dir" >>"$STATE_DIR/haproxy-build.log" 2>&1 || die_log haproxy-build "haproxy: docker build failed"
	docker push "$HAPROXY_IMAGE" >>"$STATE_DIR/haproxy-build.log" 2>&1 || die_log haproxy-build "haproxy: docker push failed"
	touch "$dir/built"
	log "haproxy: built $HAPROXY_IMAGE ($(docker run --rm "$HAPROXY_IMAGE" -v 2>/dev/null | head -n1))"
}

# Prometheus: Debian's package downloaded and unpacked into the state dir (not installed, so no
# prometheus service starts by itself), run from there on 127.0.0.1:$PROM_PORT. It runs on the
# host and scrapes containers on their Docker bridge IPs; targets come from docker_sd_configs
# (scripts/stack/prometheus.yml.in).

# prom_probe: prints "ready", "starting" (Prometheus, not ready yet), "refused", or what else answers.
prom_probe() {
	local body code rc=0
	body=$(curl -s --max-time 3 -w '\n%{http_code}' "$PROM_URL/-/ready") || rc=$?
	if ((rc == 7)); then
		echo refused
		return 0
	elif ((rc != 0)); then
		echo "error:curl exit $rc"
		return 0
	fi
	code=${body##*$'\n'}
	body=${body%$'\n'*}
	if [[ $code == 200 && $body == *Prometheus* ]]; then
		echo ready
	elif [[ $code == 503 && $body == *"Service Unavailable"* ]]; then
		echo starting
	else
		echo "HTTP $code"
	fi
}

prom_ready() { [[ $(prom_probe) == ready ]]; }

# prom_install: sets PROM_BIN and PROMTOOL, downloading the package if needed.
prom_install() {
	local dir="$STATE_DIR/prometheus" pkg="$STATE_DIR/prometheus/pkg"
	if [[ -x /usr/bin/prometheus && -x /usr/bin/promtool && -z ${RELEASE_STACK_PROMETHEUS_DOWNLOAD:-} ]]; then
		PROM_BIN=/usr/bin/prometheus PROMTOOL=/usr/bin/promtool
		return 0
	fi
	PROM_BIN=$pkg/usr/bin/prometheus PROMTOOL=$pkg/usr/bin/promtool
	if [[ -x $PROM_BIN && -x $PROMTOOL && -f $pkg/.unpacked ]]; then
		return 0
	fi
	command -v apt-get >/dev/null || die "prometheus: apt-get is missing: install Debian's prometheus yourself"
	rm -rf "$dir/deb" "$pkg"
	mkdir -p "$dir/deb"
	log "prometheus: apt-get download prometheus (unpacked in $pkg, not installed)"
	if ! (cd "$dir/deb" && apt-get download prometheus >>"$STATE_DIR/apt.log" 2>&1); then
		# The package lists may be missing or out of date.
		if ((!APT_UPDATED)); then
			need_root "apt-get update"
			log "apt: apt-get update"
			apt-get update >>"$STATE_DIR/apt.log" 2>&1 || die_log apt "apt-get update failed"
			APT_UPDATED=1
		fi
		(cd "$dir/deb" && apt-get download prometheus >>"$STATE_DIR/apt.log" 2>&1) ||
			die_log apt "apt-get download prometheus failed"
	fi
	dpkg-deb -x "$dir"/deb/prometheus_*.deb "$pkg" || die "prometheus: dpkg-deb -x failed"
	rm -rf "$dir/deb"
	[[ -x $PROM_BIN && -x $PROMTOOL ]] || die "prometheus: the package has no usr/bin/prometheus and usr/bin/promtool"
	touch "$pkg/.unpacked"
}

ensure_prometheus() {
	local dir="$STATE_DIR/prometheus" st pid cfg
	st=$(prom_probe)
	if ! recorded_pid prometheus >/dev/null && [[ $st == ready || $st == starting ]]; then
		if [[ $st == starting ]]; then
			log "prometheus: a Prometheus this script did not start answers on $PROM_URL but is not ready yet, waiting"
			wait_for 30 prom_ready || die "prometheus: the Prometheus on $PROM_URL (not started by this script) is not ready after 30s; set RELEASE_TEST_PROMETHEUS_PORT to a free port"
		fi
		log "prometheus: reusing the Prometheus that answers on $PROM_URL (not started by this script; its configuration is its own)"
		[[ $(curl -s --max-time 5 "$PROM_URL/api/v1/status/config" || true) == *"job_name: release-apps"* ]] ||
			log "prometheus: WARNING: the Prometheus on $PROM_URL has no job release-apps; the tests expect the jobs of $STACK_FILES/prometheus.yml.in"
		return 0
	fi
	prom_install

	# The configuration, checked before it is used.
	case $DOCKER_HOST in
	unix://* | tcp://* | http://* | https://*) ;;
	*) die "prometheus: docker_sd_configs cannot reach DOCKER_HOST=$DOCKER_HOST (unix://, tcp:// or http(s):// only)" ;;
	esac
	[[ $DOCKER_HOST == unix://* || -z ${DOCKER_TLS_VERIFY:-} ]] ||
		log "prometheus: WARNING: DOCKER_TLS_VERIFY is set; the Prometheus config has no TLS settings for $DOCKER_HOST"
	mkdir -p "$dir/data"
	cfg=$(<"$STACK_FILES/prometheus.yml.in")
	cfg=${cfg//@DOCKER_HOST@/$DOCKER_HOST}
	printf '%s\n' "$cfg" >"$dir/prometheus.yml.new"
	"$PROMTOOL" check config "$dir/prometheus.yml.new" >"$dir/promtool.log" 2>&1 ||
		die_log prometheus/promtool "prometheus: promtool check config rejects $dir/prometheus.yml.new"
	local changed=1
	if [[ -f $dir/prometheus.yml ]] && cmp -s "$dir/prometheus.yml.new" "$dir/prometheus.yml"; then
		changed=0
		rm -f "$dir/prometheus.yml.new"
	else
		mv "$dir/prometheus.yml.new" "$dir/prometheus.yml"
	fi

	local args=("$PROM_BIN" --config.file="$dir/prometheus.yml" --web.listen-address="$PROM_ADDR"
		--storage.tsdb.path="$dir/data" --storage.tsdb.retention.time=2h --web.enable-lifecycle
		--web.console.templates="$dir/consoles" --web.console.libraries="$dir/console_libraries")
	st=$(prom_probe)
	if pid=$(recorded_pid prometheus); then
		local old
		old=$(cat "$dir/cmdline" 2>/dev/null || true)
		if [[ $old != "${args[*]}" ]]; then
			[[ $old == *" --web.listen-address=$PROM_ADDR "* || $st == refused ]] ||
				die "prometheus: $PROM_ADDR is taken (GET $PROM_URL/-/ready: $st) and the Prometheus this script started (pid $pid) listens elsewhere; set RELEASE_TEST_PROMETHEUS_PORT to a free port, or run down first"
			log "prometheus: pid $pid (started by this script) runs with other flags, restarting it"
			stop_daemon prometheus TERM 30
			st=$(prom_probe)
		else
			if [[ $st == starting || $st == refused ]]; then
				log "prometheus: pid $pid (started by this script) is not ready yet, waiting"
				wait_for 30 eval 'prom_ready || ! recorded_pid prometheus' || true
				st=$(prom_probe)
			fi
			if [[ $st != ready ]]; then
				log "prometheus: pid $pid (started by this script) answers $PROM_URL/-/ready with '$st', restarting it"
				stop_daemon prometheus TERM 30
				st=$(prom_probe)
			elif ((changed)); then
				local out
				out=$(curl -s --max-time 30 -X POST -w ' (HTTP %{http_code})' "$PROM_URL/-/reload" 2>&1) || true
				if [[ $out != *"(HTTP 200)" ]]; then
					# Set aside, so that the next up tries again rather than seeing no change.
					mv "$dir/prometheus.yml" "$dir/prometheus.yml.rejected"
					die_log prometheus "prometheus: reloading the configuration failed ($dir/prometheus.yml.rejected): $out"
				fi
				log "prometheus: running (pid $pid) on $PROM_URL, configuration reloaded"
				return 0
			else
				log "prometheus: running (pid $pid) on $PROM_URL"
				return 0
			fi
		fi
	fi
	if ! recorded_pid prometheus >/dev/null && [[ $st != refused ]]; then
		die "prometheus: $PROM_ADDR is taken by something that is not a ready Prometheus (GET $PROM_URL/-/ready: $st); set RELEASE_TEST_PROMETHEUS_PORT to a free port"
	fi

	mkdir -p "$dir/consoles" "$dir/console_libraries"
	printf '%s\n' "${args[*]}" >"$dir/cmdline"
	start_daemon prometheus "${args[@]}"
	local deadline=$((SECONDS + 60))
	until prom_ready; do
		recorded_pid prometheus >/dev/null || die_log prometheus "prometheus exited"
		((SECONDS < deadline)) || die_log prometheus "prometheus is not ready on $PROM_URL after 60s"
		sleep 0.3
	done
	log "prometheus: ready on $PROM_URL ($("$PROM_BIN" --version 2>&1 | head -n1 | sed 's/ (branch.*//'))"
}

# ---------------------------------------------------------------------------
# 4. Terraform

ensure_terraform() {
	if TERRAFORM_OLDER=$(command -v terraform); then
		:
	else
		local gobin
		gobin=$(go env GOBIN)
		gobin=${gobin:-$(go env GOPATH)/bin}
		TERRAFORM_OLDER=$gobin/terraform
		if [[ ! -x $TERRAFORM_OLDER ]]; then
			log "terraform: not on PATH, go install $TERRAFORM_FALLBACK (a few minutes)"
			GOFLAGS=-buildvcs=false go install "$TERRAFORM_FALLBACK" >>"$STATE_DIR/terraform-install.log" 2>&1 ||
				die_log terraform-install "terraform: go install $TERRAFORM_FALLBACK failed"
		fi
	fi
	TERRAFORM_OLDER=$(readlink -f "$TERRAFORM_OLDER")
	local dir="$STATE_DIR/terraform-$TERRAFORM_VERSION"
	TERRAFORM=$dir/terraform
	if [[ ! -x $TERRAFORM ]]; then
		log "terraform: building $TERRAFORM_VERSION from the Go module proxy's source (a few minutes, once)"
		"$STACK_FILES/build-terraform.sh" "$TERRAFORM_VERSION" "$dir" >"$STATE_DIR/terraform-build.log" 2>&1 ||
			die_log terraform-build "terraform: building $TERRAFORM_VERSION failed"
	fi
	log "terraform: $TERRAFORM ($(TF_CLI_CONFIG_FILE=/dev/null "$TERRAFORM" version 2>/dev/null | head -n1)); older: $TERRAFORM_OLDER ($("$TERRAFORM_OLDER" version 2>/dev/null | head -n1))"
}

# ---------------------------------------------------------------------------
# 5. The environment for the tests

write_env() {
	local f="$STATE_DIR/env"
	{
		echo "# written by scripts/stack.sh up on $(date -u +%FT%TZ); load with: eval \"\$(scripts/stack.sh env)\""
		printf "export %s='%s'\n" \
			TF_ACC_TERRAFORM_PATH "$TERRAFORM" \
			RELEASE_TEST_TERRAFORM_OLDER "$TERRAFORM_OLDER" \
			DOCKER_HOST "$DOCKER_HOST" \
			RELEASE_TEST_DOCKER_GATEWAY "$DOCKER_GATEWAY" \
			RELEASE_TEST_REGISTRY "$REGISTRY" \
			RELEASE_TEST_AUTH_REGISTRY "$AUTH_REGISTRY" \
			RELEASE_TEST_AUTH_USERNAME "$AUTH_USER" \
			RELEASE_TEST_AUTH_PASSWORD "$AUTH_PASS" \
			RELEASE_TEST_IMAGE_REPOSITORY "$REGISTRY/$IMAGE_NAME" \
			RELEASE_TEST_AUTH_IMAGE_REPOSITORY "$AUTH_REGISTRY/$IMAGE_NAME" \
			RELEASE_TEST_TOKEN_REGISTRY "$TOKEN_REGISTRY" \
			RELEASE_TEST_TOKEN_IMAGE_REPOSITORY "$TOKEN_REGISTRY/$IMAGE_NAME" \
			RELEASE_TEST_IMAGE_V1_DIGEST "$IMAGE_V1_DIGEST" \
			RELEASE_TEST_IMAGE_V2_DIGEST "$IMAGE_V2_DIGEST" \
			RELEASE_TEST_HAPROXY_IMAGE "$HAPROXY_IMAGE" \
			RELEASE_TEST_SWARM 1 \
			RELEASE_TEST_SWARM3_DOCKER_HOST "$(sw_sock 1)" \
			RELEASE_TEST_SWARM3_REGISTRY "$SW_REGISTRY" \
			RELEASE_TEST_SWARM3_ADDRESS "$SW_NET.11" \
			RELEASE_TEST_SWARM3_DIR "$STATE_DIR/swarm-cluster"
		printf "export %s='%s'\n" RELEASE_TEST_PROMETHEUS_URL "$PROM_URL"
		[[ -z ${DOCKER_API_VERSION:-} ]] || printf "export DOCKER_API_VERSION='%s'\n" "$DOCKER_API_VERSION"
		if [[ -n ${DATABASE_URL:-} ]]; then
			printf "export %s='%s'\n" \
				RELEASE_TEST_PG_PORT "$PG_PORT" \
				RELEASE_TEST_DATABASE_URL "$DATABASE_URL" \
				RELEASE_TEST_DATABASE_URL_CONTAINER "$DATABASE_URL_CONTAINER"
		fi
	} >"$f.tmp"
	mv "$f.tmp" "$f"
	log "env: written to $f"
}

# ---------------------------------------------------------------------------

lock_state() {
	mkdir -p "$STATE_DIR"
	exec 9>"$STATE_DIR/.lock"
	flock -w 900 9 || die "another scripts/stack.sh holds $STATE_DIR/.lock"
}

cmd_up() {
	local t0=$SECONDS
	lock_state
	log "up: state in $STATE_DIR"
	ensure_docker
	ensure_registries
	ensure_images
	ensure_token_image
	ensure_postgres
	check_docker_networking
	ensure_swarm
	ensure_swarm_cluster
	ensure_haproxy_image
	ensure_prometheus
	ensure_terraform
	write_env
	log "up: done in $((SECONDS - t0))s; load the environment with: eval \"\$(scripts/stack.sh env)\""
}

cmd_env() {
	[[ -f $STATE_DIR/env ]] || die "no $STATE_DIR/env: run scripts/stack.sh up first"
	cat "$STATE_DIR/env"
}

cmd_status() {
	local name pid
	for name in dockerd registry registry-auth token-issuer registry-token postgres prometheus; do
		if pid=$(recorded_pid "$name"); then
			log "$name: running, pid $pid (started by this script)"
		else
			log "$name: not started by this script"
		fi
	done
	if docker_ok; then log "docker: answers"; else log "docker: does not answer"; fi
	log "registry $REGISTRY: GET /v2/ -> $(registry_probe "$REGISTRY")"
	log "registry-auth $AUTH_REGISTRY: GET /v2/ -> $(registry_probe "$AUTH_REGISTRY")"
	log "registry-token $TOKEN_REGISTRY: GET /v2/ -> $(registry_probe "$TOKEN_REGISTRY")"
	log "prometheus $PROM_URL: GET /-/ready -> $(prom_probe)"
}

cmd_down() {
	lock_state
	# Reverse order of up. Data (registries, PostgreSQL, Prometheus, /var/lib/docker) is kept.
	stop_daemon prometheus TERM 30
	stop_daemon postgres INT 30
	stop_daemon registry-token TERM 15
	stop_daemon token-issuer TERM 15
	stop_daemon registry-auth TERM 15
	stop_swarm_cluster
	stop_daemon registry TERM 15
	leave_swarm
	stop_daemon dockerd TERM 60
	log "down: done (only processes recorded in $STATE_DIR were stopped)"
}

case ${1:-} in
up) cmd_up ;;
env) cmd_env ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: $0 up|env|status|down" >&2
	exit 2
	;;
esac

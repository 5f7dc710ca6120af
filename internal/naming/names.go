package naming

import (
	"fmt"
	"strconv"
	"strings"
)

// trackLetters name a router server's track in its first letter.
var trackLetters = map[Track]string{TrackStable: "r", TrackCanary: "c", TrackBaseline: "b"}

// ServerName names a container in the router: r<rev>-<replica> for stable,
// c… for a canary, b… for a baseline.
func ServerName(track Track, revision, replica int) string {
	letter, ok := trackLetters[track]
	if !ok {
		letter = trackLetters[TrackStable]
	}
	return fmt.Sprintf("%s%d-%d", letter, revision, replica)
}

// Server is a router server name read back.
type Server struct {
	Track    Track
	Revision int
	Replica  int
}

// ParseServerName reads a name ServerName wrote; ok is false for any other.
func ParseServerName(name string) (s Server, ok bool) {
	if name == "" {
		return Server{}, false
	}
	for track, letter := range trackLetters {
		if name[:1] != letter {
			continue
		}
		rev, replica, found := strings.Cut(name[1:], "-")
		r, err1 := strconv.Atoi(rev)
		n, err2 := strconv.Atoi(replica)
		if !found || err1 != nil || err2 != nil || r < 1 || n < 1 || strconv.Itoa(r) != rev || strconv.Itoa(n) != replica {
			return Server{}, false
		}
		return Server{Track: track, Revision: r, Replica: n}, true
	}
	return Server{}, false
}

// ContainerName names an application container. A baseline runs the stable
// revision again, so its name says so (b) to stay apart from the original (r).
func ContainerName(environment, service string, track Track, revision, replica int) string {
	return ReplicaName(SwarmServiceName(environment, service, track, revision), replica)
}

// SwarmServiceName names the Swarm service that runs every replica of a
// revision's track on a swarm.
func SwarmServiceName(environment, service string, track Track, revision int) string {
	letter := "r"
	if track == TrackBaseline {
		letter = "b"
	}
	return fmt.Sprintf("%s-%s-%s%d", environment, service, letter, revision)
}

// SwarmTasksName is the name Swarm's DNS answers with the addresses of a
// service's running tasks.
func SwarmTasksName(swarmService string) string { return "tasks." + swarmService }

// ReplicaName names one replica of a Swarm service, as the container of
// that replica would be named on one host.
func ReplicaName(swarmService string, replica int) string {
	return fmt.Sprintf("%s-%d", swarmService, replica)
}

// NetworkName is the user-defined network of an environment's service.
func NetworkName(environment, service string) string {
	return "release-" + environment + "-" + service
}

// OverlayNetworkName names the overlay network an environment's Swarm
// services run on: another name than its bridge network's, so that an
// environment can move from one to the other.
func OverlayNetworkName(environment, service string) string {
	return NetworkName(environment, service) + "-swarm"
}

// ServedRecordName names the record that a revision of an environment's service served.
func ServedRecordName(environment, service string, revision int) string {
	return fmt.Sprintf("release-served-%s-%s-r%d", environment, service, revision)
}

// JudgmentMarkerName is the container that keeps a canary's analysis after
// its look-th analysis; the newest look is the one that counts.
func JudgmentMarkerName(environment, service string, look int) string {
	return fmt.Sprintf("release-judgment-%s-%s-%d", environment, service, look)
}

// CommandMarkerName is the container that carries an action's command to
// the canary of an environment's service (one at a time).
func CommandMarkerName(environment, service string) string {
	return fmt.Sprintf("release-command-%s-%s", environment, service)
}

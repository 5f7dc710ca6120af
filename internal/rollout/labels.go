// Package rollout decides and carries out what happens to an environment's
// containers and route: the hard switch, its health gate, the history kept
// for rollback, drift repair and teardown. Labels on the containers are the
// record, so a crash at any step leaves a state that Observe reads back.
package rollout

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Container labels. release.managed marks everything the provider owns.
const (
	LabelManaged     = "release.managed"
	LabelKind        = "release.kind" // app or router
	LabelEnvironment = "release.environment"
	LabelService     = "release.service"
	LabelImage       = "release.image"
	LabelDigest      = "release.digest"
	LabelRevision    = "release.revision"
	LabelTrack       = "release.track"
	LabelReplica     = "release.replica"
	LabelDeployedAt  = "release.deployed_at"
	LabelConfigHash  = "release.config_hash"
	LabelRouter      = "release.router"
	LabelHistory     = "release.history"
	LabelPort        = "release.port"
)

// Tracks of a container.
const (
	TrackStable   = "stable"
	TrackCanary   = "canary"
	TrackBaseline = "baseline"
)

// HistoryEntry is one revision that served an environment.
type HistoryEntry struct {
	Revision   int
	Digest     string
	Image      string
	DeployedAt time.Time
}

// maxHistory bounds the history carried in labels.
const maxHistory = 50

// encodeHistory writes entries as "rev|image|unix;…", newest first. Images
// are repo@digest, so the digest is not repeated.
func encodeHistory(h []HistoryEntry) string {
	if len(h) > maxHistory {
		h = h[:maxHistory]
	}
	parts := make([]string, 0, len(h))
	for _, e := range h {
		parts = append(parts, fmt.Sprintf("%d|%s|%d", e.Revision, e.Image, e.DeployedAt.Unix()))
	}
	return strings.Join(parts, ";")
}

func decodeHistory(s string) []HistoryEntry {
	var out []HistoryEntry
	for _, p := range strings.Split(s, ";") {
		f := strings.Split(p, "|")
		if len(f) != 3 {
			continue
		}
		rev, err1 := strconv.Atoi(f[0])
		unix, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		e := HistoryEntry{Revision: rev, Image: f[1], DeployedAt: time.Unix(unix, 0).UTC()}
		if i := strings.LastIndex(f[1], "@"); i >= 0 {
			e.Digest = f[1][i+1:]
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Revision > out[j].Revision })
	return out
}

func containerName(environment, service string, revision, replica int) string {
	return fmt.Sprintf("%s-%s-r%d-%d", environment, service, revision, replica)
}

// baselineContainerName names a baseline container: the stable revision, run again beside a canary.
func baselineContainerName(environment, service string, revision, replica int) string {
	return fmt.Sprintf("%s-%s-b%d-%d", environment, service, revision, replica)
}

func serverName(revision, replica int) string {
	return fmt.Sprintf("r%d-%d", revision, replica)
}

// trackServerName names a canary (c…) or baseline (b…) server; stable servers are r….
func trackServerName(track string, revision, replica int) string {
	switch track {
	case TrackCanary:
		return fmt.Sprintf("c%d-%d", revision, replica)
	case TrackBaseline:
		return fmt.Sprintf("b%d-%d", revision, replica)
	}
	return serverName(revision, replica)
}

// canaryOfServer reads the revision of a canary server c<rev>-<i>; 0 otherwise.
func canaryOfServer(name string) int {
	if !strings.HasPrefix(name, "c") {
		return 0
	}
	rev, _, _ := strings.Cut(name[1:], "-")
	n, _ := strconv.Atoi(rev)
	return n
}

// revisionOfServer reads the revision back from a server name r<rev>-<i>.
func revisionOfServer(name string) int {
	if !strings.HasPrefix(name, "r") {
		return 0
	}
	rev, _, _ := strings.Cut(name[1:], "-")
	n, _ := strconv.Atoi(rev)
	return n
}

package rollout

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
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

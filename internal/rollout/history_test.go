package rollout

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func entry(rev int, digest string, unix int64) HistoryEntry {
	return HistoryEntry{
		Revision:   rev,
		Digest:     digest,
		Image:      "127.0.0.1:5000/shop/web@" + digest,
		DeployedAt: time.Unix(unix, 0).UTC(),
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	h := []HistoryEntry{
		entry(3, "sha256:"+strings.Repeat("c", 64), 1700000300),
		entry(2, "sha256:"+strings.Repeat("b", 64), 1700000200),
		entry(1, "sha256:"+strings.Repeat("a", 64), 1700000100),
	}
	s := encodeHistory(h)
	want := "3|127.0.0.1:5000/shop/web@sha256:" + strings.Repeat("c", 64) + "|1700000300;" +
		"2|127.0.0.1:5000/shop/web@sha256:" + strings.Repeat("b", 64) + "|1700000200;" +
		"1|127.0.0.1:5000/shop/web@sha256:" + strings.Repeat("a", 64) + "|1700000100"
	if s != want {
		t.Errorf("encodeHistory =\n%s\nwant\n%s", s, want)
	}
	if got := decodeHistory(s); !reflect.DeepEqual(got, h) {
		t.Errorf("decodeHistory(encodeHistory(h)) =\n%+v\nwant\n%+v", got, h)
	}
	// A registry with a port has a colon before the @; the digest is what follows the last @.
	if got := decodeHistory(s)[0].Digest; got != "sha256:"+strings.Repeat("c", 64) {
		t.Errorf("digest = %q", got)
	}
}

func TestHistoryEmpty(t *testing.T) {
	if got := encodeHistory(nil); got != "" {
		t.Errorf("encodeHistory(nil) = %q, want empty", got)
	}
	if got := decodeHistory(""); len(got) != 0 {
		t.Errorf("decodeHistory(\"\") = %+v, want none", got)
	}
}

func TestDecodeHistoryOrdersNewestFirst(t *testing.T) {
	got := decodeHistory("1|img@sha256:a|100;3|img@sha256:c|300;2|img@sha256:b|200")
	var revs []int
	for _, e := range got {
		revs = append(revs, e.Revision)
	}
	if want := []int{3, 2, 1}; !reflect.DeepEqual(revs, want) {
		t.Errorf("revisions = %v, want %v", revs, want)
	}
	if got[0].Digest != "sha256:c" || !got[0].DeployedAt.Equal(time.Unix(300, 0)) {
		t.Errorf("entry of revision 3 = %+v", got[0])
	}
	if got[0].DeployedAt.Location() != time.UTC {
		t.Errorf("DeployedAt is in %v, want UTC", got[0].DeployedAt.Location())
	}
}

func TestDecodeHistoryIgnoresMalformedParts(t *testing.T) {
	s := strings.Join([]string{
		"5|img@sha256:e|500",
		"",                         // empty part
		"garbage",                  // no fields
		"4|img@sha256:d",           // two fields
		"x|img@sha256:x|400",       // revision not a number
		"3|img@sha256:c|soon",      // time not a number
		"2|img@sha256:b|200|9",     // four fields
		"1|img-without-digest|100", // kept, no digest
	}, ";")
	got := decodeHistory(s)
	want := []HistoryEntry{
		{Revision: 5, Image: "img@sha256:e", Digest: "sha256:e", DeployedAt: time.Unix(500, 0).UTC()},
		{Revision: 1, Image: "img-without-digest", DeployedAt: time.Unix(100, 0).UTC()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeHistory =\n%+v\nwant\n%+v", got, want)
	}
}

func TestEncodeHistoryCap(t *testing.T) {
	var h []HistoryEntry
	for rev := 80; rev >= 1; rev-- {
		h = append(h, entry(rev, fmt.Sprintf("sha256:%064d", rev), int64(rev)))
	}
	s := encodeHistory(h)
	got := decodeHistory(s)
	if len(got) != maxHistory {
		t.Fatalf("%d entries kept, want %d", len(got), maxHistory)
	}
	// The newest are kept.
	if got[0].Revision != 80 || got[len(got)-1].Revision != 80-maxHistory+1 {
		t.Errorf("kept revisions %d..%d, want 80..%d", got[0].Revision, got[len(got)-1].Revision, 80-maxHistory+1)
	}
	// Docker labels are bounded in practice; a full history of long image names stays well inside.
	if len(s) > 16*1024 {
		t.Errorf("encoded history is %d bytes", len(s))
	}
	// The caller's slice is not truncated.
	if len(h) != 80 {
		t.Errorf("caller's history changed length to %d", len(h))
	}
}

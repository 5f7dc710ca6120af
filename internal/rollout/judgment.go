package rollout

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// gzipWriters are reused: a writer's buffers cost more than compressing a look's state.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// saveJudgment keeps a canary's analysis so far with it: a marker per look,
// the newest one written before the older ones are removed, so a kill at
// any moment leaves the last complete state.
func saveJudgment(ctx context.Context, host Host, environment, service string, revision, look int, image string, state []byte) error {
	var z bytes.Buffer
	w := gzipWriters.Get().(*gzip.Writer)
	w.Reset(&z)
	_, _ = w.Write(state)
	_ = w.Close()
	gzipWriters.Put(w)
	err := createMarker(ctx, host, naming.JudgmentMarkerName(environment, service, look), image, naming.KindJudgment, environment, service, revision,
		map[string]string{naming.LabelLook: strconv.Itoa(look), naming.LabelJudgment: base64.StdEncoding.EncodeToString(z.Bytes())})
	if err != nil && !docker.IsConflict(err) {
		return fmt.Errorf("keeping the canary's analysis: %w", err)
	}
	return removeJudgments(ctx, host, environment, service, func(rev, l int) bool { return rev != revision || l < look })
}

// loadJudgment is the newest analysis kept for the canary of revision; nil
// when there is none.
func loadJudgment(ctx context.Context, host Host, environment, service string, revision int) ([]byte, error) {
	cs, err := judgmentMarkers(ctx, host, environment, service)
	if err != nil {
		return nil, err
	}
	var newest *docker.Container
	for i, c := range cs {
		if atoi(c.Labels[naming.LabelRevision]) == revision && (newest == nil || atoi(c.Labels[naming.LabelLook]) > atoi(newest.Labels[naming.LabelLook])) {
			newest = &cs[i]
		}
	}
	if newest == nil {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(newest.Labels[naming.LabelJudgment])
	if err != nil {
		return nil, fmt.Errorf("the canary's kept analysis (%s): %w", newest.Name, err)
	}
	r, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the canary's kept analysis (%s): %w", newest.Name, err)
	}
	return io.ReadAll(io.LimitReader(r, 16<<20))
}

// removeJudgments removes the kept analyses that drop says to.
func removeJudgments(ctx context.Context, host Host, environment, service string, drop func(revision, look int) bool) error {
	cs, err := judgmentMarkers(ctx, host, environment, service)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		if drop(atoi(c.Labels[naming.LabelRevision]), atoi(c.Labels[naming.LabelLook])) {
			if err := host.Remove(ctx, c.ID); err != nil && !docker.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func judgmentMarkers(ctx context.Context, host Host, environment, service string) ([]docker.Container, error) {
	return host.List(ctx, map[string]string{
		naming.LabelManaged: "true", naming.LabelKind: string(naming.KindJudgment),
		naming.LabelEnvironment: environment, naming.LabelService: service,
	})
}

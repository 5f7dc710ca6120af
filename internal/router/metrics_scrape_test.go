package router

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// execContainer is a router container that answers one command and keeps
// the files copied into it.
type execContainer struct {
	Container // methods the tests do not use
	code      int
	lost      int // the first lost execs fail as a missing probe does
	out       string
	err       error
	cmds      [][]string
	copied    map[string]docker.File // by full path
}

func (e *execContainer) Exec(_ context.Context, id string, cmd []string) (int, string, error) {
	e.cmds = append(e.cmds, cmd)
	if e.lost > 0 {
		e.lost--
		return 126, "OCI runtime exec failed: exec failed: stat /.release-probe: no such file or directory: unknown", nil
	}
	return e.code, e.out, e.err
}

func (e *execContainer) Architecture(context.Context) (string, error) { return "x86_64", nil }

func (e *execContainer) CopyFiles(_ context.Context, id, dir string, files []docker.File) error {
	if e.copied == nil {
		e.copied = map[string]docker.File{}
	}
	for _, f := range files {
		e.copied[strings.TrimSuffix(dir, "/")+"/"+f.Path] = f
	}
	return nil
}

func TestScrapeServers(t *testing.T) {
	fake := &execContainer{out: exporterSample}
	c := &Controller{Docker: fake}
	got, err := c.ScrapeServers(context.Background(), "router-1", 9101, "be_prod_web")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{probe.Path, "-body", "9101", "/metrics?scope=server", "5s"}
	if len(fake.cmds) != 1 || !reflect.DeepEqual(fake.cmds[0], want) {
		t.Errorf("ran %v, want %v", fake.cmds, want)
	}
	if len(got) != 2 || got["c2-1"] != (ServerCounts{Requests: 20, Errors: 1, MeanLatency: 0.12}) || got["r1-1"].Requests != 180 {
		t.Errorf("counts %+v", got)
	}
}

func TestScrapeServersFailures(t *testing.T) {
	for name, fake := range map[string]*execContainer{
		"exec error":    {err: errors.New("daemon gone")},
		"probe failed":  {code: 1, out: "release-probe: GET /metrics?scope=server answered \"HTTP/1.1 404 Not Found\"\n"},
		"probe missing": {code: 127, out: "exec: \"/.release-probe\": no such file or directory\n"},
		"cut output":    {out: strings.TrimSuffix(exporterSample, "20\n") + "1"},
		"not metrics":   {out: "<html>\n"},
	} {
		c := &Controller{Docker: fake}
		if got, err := c.ScrapeServers(context.Background(), "router-1", 9101, "be_prod_web"); err == nil {
			t.Errorf("%s: no error, counts %+v", name, got)
		}
	}
}

func TestServerStates(t *testing.T) {
	fake := &execContainer{out: exporterStates(t)}
	c := &Controller{Docker: fake}
	got, err := c.ServerStates(context.Background(), "router-1", 9101, "be_t_web")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{probe.Path, "-body", "9101", "/metrics?scope=server", "5s"}
	if len(fake.cmds) != 1 || !reflect.DeepEqual(fake.cmds[0], want) {
		t.Errorf("ran %v, want %v", fake.cmds, want)
	}
	if len(got) != 5 || !got["ok-1"].Ready() || got["closed-1"] != (ServerState{Status: "DOWN", CheckStatus: "L4CON", Weight: 50}) {
		t.Errorf("states %+v", got)
	}
	fake = &execContainer{code: 1, out: "release-probe: dial tcp 127.0.0.1:9101: connect: connection refused\n"}
	if got, err := (&Controller{Docker: fake}).ServerStates(context.Background(), "router-1", 9101, "be_t_web"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a failed probe gave %+v, %v; want its message", got, err)
	}
}

func TestProbePlacedOncePerRouter(t *testing.T) {
	ctx := context.Background()
	fake := &execContainer{out: exporterSample}
	installs := 0
	counting := &countingCopies{execContainer: fake, n: &installs}
	c := &Controller{Docker: counting}
	for _, id := range []string{"router-1", "router-1", "router-2", "router-1"} {
		if _, err := c.ScrapeServers(ctx, id, 9101, "be_prod_web"); err != nil {
			t.Fatal(err)
		}
	}
	if installs != 2 {
		t.Errorf("the probe was placed %d times for two routers, want 2", installs)
	}
	// One placed by the caller is not placed again.
	installs = 0
	c = &Controller{Docker: counting}
	if err := c.InstallProbe(ctx, "router-1", "amd64"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ScrapeServers(ctx, "router-1", 9101, "be_prod_web"); err != nil || installs != 1 {
		t.Errorf("ScrapeServers after InstallProbe: %v, %d placements, want 1", err, installs)
	}
}

// countingCopies counts the files copied into containers.
type countingCopies struct {
	*execContainer
	n *int
}

func (c *countingCopies) CopyFiles(ctx context.Context, id, dir string, files []docker.File) error {
	*c.n++
	return c.execContainer.CopyFiles(ctx, id, dir, files)
}

func TestLostProbeIsPlacedAgain(t *testing.T) {
	// The Controller placed the probe, then the container was replaced under the same name.
	fake := &execContainer{out: exporterSample, lost: 1}
	installs := 0
	c := &Controller{Docker: &countingCopies{execContainer: fake, n: &installs}}
	c.probed = map[string]bool{"router-1": true}
	if _, err := c.ScrapeServers(context.Background(), "router-1", 9101, "be_prod_web"); err != nil {
		t.Fatalf("ScrapeServers = %v, want the probe placed again and the scrape retried", err)
	}
	if installs != 1 || len(fake.cmds) != 2 {
		t.Errorf("%d placements and %d execs, want 1 and 2", installs, len(fake.cmds))
	}
	// Lost again after placing it: the error, not a loop.
	fake = &execContainer{out: exporterSample, lost: 5}
	c = &Controller{Docker: fake}
	if _, err := c.ScrapeServers(context.Background(), "router-1", 9101, "be_prod_web"); err == nil || len(fake.cmds) != 2 {
		t.Errorf("ScrapeServers = %v after %d execs, want an error after 2", err, len(fake.cmds))
	}
}

func TestInstallProbe(t *testing.T) {
	fake := &execContainer{}
	c := &Controller{Docker: fake}
	if err := c.InstallProbe(context.Background(), "router-1", "x86_64"); err != nil {
		t.Fatal(err)
	}
	bin, _ := probe.Binary("amd64")
	f, ok := fake.copied[probe.Path]
	if !ok || !bytes.Equal(f.Content, bin) || f.Mode != 0o755 {
		t.Errorf("copied %v, want the amd64 probe at %s with mode 0755", keys(fake.copied), probe.Path)
	}
	if err := c.InstallProbe(context.Background(), "router-1", "s390x"); err == nil {
		t.Error("an unsupported architecture was installed")
	}
}

func keys(m map[string]docker.File) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

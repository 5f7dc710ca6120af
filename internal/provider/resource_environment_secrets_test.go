package provider

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// env is sensitive in plans; env_wo (write-only) reaches the containers and
// is in no plan and no state; a change of env_wo is released by raising
// env_wo_version, and env_wo without it, or a name in both, is refused at plan.
func TestAccEnvironment_secretsStayOutOfPlansAndState(t *testing.T) {
	f := newEnvFixture(t)
	const visible, secret1, secret2 = "visible-7301", "wo-secret-4711", "wo-secret-5822"
	config := func(secret string, version int) string {
		extra := `env = { GREETING = "` + visible + `" }`
		if secret != "" {
			extra += "\n  env_wo = { DATABASE_URL = \"postgres://app:" + secret + "@db/app\" }"
		}
		if version > 0 {
			extra += "\n  env_wo_version = " + string(rune('0'+version))
		}
		return f.config(f.v1, extra)
	}
	w := newTFWorkspace(t, config(secret1, 1))
	w.destroyOnCleanup()

	plan := w.mustRun("plan")
	if !regexp.MustCompile(`\+ env\s+= \(sensitive value\)`).MatchString(plan) || strings.Contains(plan, visible) || strings.Contains(plan, secret1) {
		t.Errorf("the plan shows env or env_wo:\n%s", plan)
	}
	w.mustRun("apply", "-auto-approve")
	f.checkContainersEnv(t, 1, "GREETING="+visible, "DATABASE_URL=postgres://app:"+secret1+"@db/app")
	state := w.stateFile()
	if strings.Contains(state, secret1) {
		t.Errorf("the state holds env_wo's value:\n%s", state)
	}
	if !strings.Contains(state, `"env_wo": null`) || !strings.Contains(state, `"env_wo_version": 1`) {
		t.Errorf("the state lacks env_wo = null or env_wo_version = 1:\n%s", state)
	}

	// A new value without a new version: nothing to release (Terraform keeps no copy to compare).
	w.write(config(secret2, 1))
	if out, code := w.planCode(); code != 0 {
		t.Errorf("a new env_wo value with the same version planned a change (exit %d):\n%s", code, out)
	}
	// The version raised: a release with the new value.
	w.write(config(secret2, 2))
	out, code := w.planCode()
	if code != 2 || !strings.Contains(out, "env_wo_version = 1 -> 2") || strings.Contains(out, secret2) {
		t.Errorf("the plan of env_wo_version 2 (exit %d):\n%s", code, out)
	}
	w.mustRun("apply", "-auto-approve")
	f.checkContainersEnv(t, 2, "DATABASE_URL=postgres://app:"+secret2+"@db/app")
	if state := w.stateFile(); strings.Contains(state, secret2) || strings.Contains(state, secret1) {
		t.Errorf("the state holds env_wo's value")
	}

	// Refused at plan.
	w.write(config(secret2, 0))
	if out, code := w.run("plan"); code == 0 || !strings.Contains(out, "Missing env_wo_version") {
		t.Errorf("env_wo without env_wo_version (exit %d):\n%s", code, out)
	}
	w.write(strings.Replace(config(secret2, 2), `env = { GREETING = "`+visible+`" }`, `env = { GREETING = "`+visible+`", DATABASE_URL = "x" }`, 1))
	// (Terraform itself quotes the configuration's line, here a literal; the provider's message names the variable only.)
	if out, code := w.run("plan"); code == 0 || !strings.Contains(out, "Variable In env And env_wo") || !strings.Contains(out, "DATABASE_URL is set in both env and env_wo") {
		t.Errorf("a name in env and env_wo (exit %d):\n%s", code, out)
	}
	w.write(config(secret2, 2))
}

// checkContainersEnv checks that every running container of a revision has the variables.
func (f *envFixture) checkContainersEnv(t *testing.T, rev int, want ...string) {
	t.Helper()
	n := 0
	for _, c := range f.containers() {
		if c.Labels[naming.LabelRevision] != string(rune('0'+rev)) || !c.Running() {
			continue
		}
		full, err := f.engine.Inspect(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range want {
			if !slices.Contains(full.Env, kv) {
				t.Errorf("container %s lacks %s", c.Name, strings.SplitN(kv, "=", 2)[0])
			}
		}
		n++
	}
	if n == 0 {
		t.Errorf("no running container of revision %d", rev)
	}
}

// stateFile is the workspace's local state as Terraform wrote it.
func (w *tfWorkspace) stateFile() string {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, "terraform.tfstate"))
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

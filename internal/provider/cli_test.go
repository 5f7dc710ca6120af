package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The CLI harness runs the real terraform binary against a freshly built
// provider through dev_overrides, exactly as a user's shell would, for the
// checks terraform-plugin-testing cannot make (warnings in plan output).

var (
	cliProviderOnce sync.Once
	cliProviderDir  string
	cliProviderErr  error
)

func cliProvider(t testing.TB) string {
	t.Helper()
	cliProviderOnce.Do(func() {
		cliProviderDir, cliProviderErr = os.MkdirTemp("", "release-provider-bin-")
		if cliProviderErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(cliProviderDir, "terraform-provider-release"), "github.com/releasekit/terraform-provider-release")
		out, err := cmd.CombinedOutput()
		if err != nil {
			cliProviderErr = errors.New("building the provider: " + err.Error() + "\n" + string(out))
		}
	})
	if cliProviderErr != nil {
		t.Fatal(cliProviderErr)
	}
	return cliProviderDir
}

// tfWorkspace is a directory holding one Terraform configuration.
type tfWorkspace struct {
	t   testing.TB
	dir string
	env []string
	// terraform is the binary to run; terraformPath() when empty.
	terraform string
}

func newTFWorkspace(t testing.TB, config string) *tfWorkspace {
	t.Helper()
	dir := t.TempDir()
	w := &tfWorkspace{t: t, dir: dir, env: append(os.Environ(), "TF_CLI_CONFIG_FILE="+filepath.Join(dir, ".terraformrc"), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")}
	w.useProvider(cliProvider(t))
	providers := "terraform {\n  required_providers {\n    release = {\n      source = \"releasekit/release\"\n    }\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "providers.tf"), []byte(providers), 0o600); err != nil {
		t.Fatal(err)
	}
	w.write(config)
	return w
}

// useProvider points the workspace at the provider binary in dir.
func (w *tfWorkspace) useProvider(dir string) {
	w.t.Helper()
	rc := "provider_installation {\n  dev_overrides {\n    \"releasekit/release\" = \"" + dir + "\"\n  }\n  direct {}\n}\n"
	if err := os.WriteFile(filepath.Join(w.dir, ".terraformrc"), []byte(rc), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// providerAt builds the provider as it was at a commit of this repository
// (a worktree of it, so the working tree is not touched) and returns the
// directory of the binary.
func providerAt(t testing.TB, commit string) string {
	t.Helper()
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git repository with history, so the provider at %s cannot be built: %v", commit, err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("git", "-C", strings.TrimSpace(string(root)), "worktree", "add", "--detach", src, commit).CombinedOutput(); err != nil {
		t.Fatalf("checking out %s: %v\n%s", commit, err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("git", "-C", strings.TrimSpace(string(root)), "worktree", "remove", "--force", src).Run()
	})
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(bin, "terraform-provider-release"), ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the provider at %s: %v\n%s", commit, err, out)
	}
	return bin
}

func (w *tfWorkspace) write(config string) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, "main.tf"), []byte(config), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

func terraformPath() string {
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	return "terraform"
}

// run runs terraform and returns its combined output and exit code.
func (w *tfWorkspace) run(args ...string) (string, int) {
	w.t.Helper()
	bin := w.terraform
	if bin == "" {
		bin = terraformPath()
	}
	// -no-color follows the command: `state` has subcommands, `output` takes none.
	n := 1
	if args[0] == "state" && len(args) > 1 {
		n = 2
	}
	cmd := exec.Command(bin, append(args[:n:n], append([]string{"-no-color"}, args[n:]...)...)...)
	if args[0] == "output" {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = w.dir
	cmd.Env = w.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		w.t.Fatalf("running terraform %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), code
}

// mustRun runs terraform and fails the test on a non-zero exit.
func (w *tfWorkspace) mustRun(args ...string) string {
	w.t.Helper()
	out, code := w.run(args...)
	if code != 0 {
		w.t.Fatalf("terraform %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func (w *tfWorkspace) output(name string) string {
	w.t.Helper()
	return strings.TrimSpace(w.mustRun("output", "-raw", name))
}

// destroy cleans up at the end of a test.
func (w *tfWorkspace) destroyOnCleanup() {
	w.t.Cleanup(func() {
		if out, code := w.run("destroy", "-auto-approve"); code != 0 {
			w.t.Errorf("terraform destroy exited %d:\n%s", code, out)
		}
	})
}

// configText is the workspace's configuration as last written.
func (w *tfWorkspace) configText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// identities are the resources' identities in the workspace's state, by address.
func (w *tfWorkspace) identities() map[string]map[string]any {
	w.t.Helper()
	var shown struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address  string         `json:"address"`
					Identity map[string]any `json:"identity"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(w.mustRun("show", "-json")), &shown); err != nil {
		w.t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range shown.Values.RootModule.Resources {
		out[r.Address] = r.Identity
	}
	return out
}

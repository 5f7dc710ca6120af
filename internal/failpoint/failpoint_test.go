package failpoint

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A point that is not named costs nothing and returns.
func TestHitWithoutTheVariableReturns(t *testing.T) {
	t.Setenv(Env, "")
	for _, p := range All {
		Hit(p)
	}
	t.Setenv(Env, Switched)
	Hit(Created) // another point
}

// The named point kills the process at the named hit (here a child that
// runs the test binary; its parent, a shell, is not Terraform and survives).
func TestHitKillsAtTheNamedHit(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Hit(StepRouted) // first hit: passes when #2 is asked
		os.Stdout.WriteString("after first hit\n")
		Hit(StepRouted)
		os.Stdout.WriteString("after second hit\n")
		os.Exit(0)
	}
	cmd := exec.Command("sh", "-c", `"$0" -test.run '^TestHitKillsAtTheNamedHit$'; echo "child exit $?"`, os.Args[0])
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", Env+"="+StepRouted+"#2")
	out, _ := cmd.CombinedOutput()
	got := string(out)
	if !strings.Contains(got, "after first hit") || strings.Contains(got, "after second hit") || !strings.Contains(got, "child exit 137") {
		t.Fatalf("output %q: want the first hit passed, the second killed the child (exit 137) and not its shell", got)
	}
}

package provider

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	_ "github.com/lib/pq"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// migFixture runs the test app's migrate mode against the stack's PostgreSQL.
// Each migration n creates table mig_<id>_<n> and writes 'up'/'down' events
// with the database clock into release_audit, so order can be asserted.
type migFixture struct {
	*envFixture
	id    string
	dbURL string // for the containers, on the Docker bridge gateway
	db    *sql.DB
}

func newMigFixture(t *testing.T) *migFixture {
	f := &migFixture{envFixture: newEnvFixture(t), id: acctest.RandStringFromCharSet(8, "abcdefghijklmnopqrstuvwxyz")}
	f.dbURL = testStackEnv(t, "RELEASE_TEST_DATABASE_URL_CONTAINER")
	db, err := sql.Open("postgres", testStackEnv(t, "RELEASE_TEST_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS release_audit (event text, at timestamptz DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	f.db = db
	return f
}

func (f *migFixture) table(n int) string { return fmt.Sprintf("mig_%s_%d", f.id, n) }

// migration renders release_migration.mN for the given image digest.
func (f *migFixture) migration(n int, digest string, createBeforeDestroy bool, extraEnv string) string {
	deps := ""
	if n > 1 {
		deps = fmt.Sprintf("depends_on = [release_migration.m%d]", n-1)
	}
	lifecycle := ""
	if createBeforeDestroy {
		lifecycle = "lifecycle {\n    create_before_destroy = true\n  }"
	}
	v := fmt.Sprintf("%s_%d", f.id, n)
	return fmt.Sprintf(`
resource "release_migration" "m%[1]d" {
  image        = "%[2]s@%[3]s"
  up_command   = ["/app", "migrate", "up"]
  down_command = ["/app", "migrate", "down"]
  # Only this test's environment: other environments on the host may serve the same images.
  environments = [%[10]q]
  env = {
    DATABASE_URL       = %[4]q
    MIGRATION_VERSION  = %[5]q
    MIGRATION_SQL_UP   = "CREATE TABLE %[6]s (id int); INSERT INTO release_audit (event) VALUES ('up %[5]s')"
    MIGRATION_SQL_DOWN = "DROP TABLE %[6]s; INSERT INTO release_audit (event) VALUES ('down %[5]s')"
    %[7]s
  }
  %[8]s
  %[9]s
  %[11]s
}
`, n, f.repo, digest, f.dbURL, v, f.table(n), extraEnv, deps, lifecycle, f.env, f.swarmAttribute())
}

// release renders the router, the environment on digest depending on migration n, and the migrations.
func (f *migFixture) release(digest string, n int, migrations string) string {
	return strings.Replace(f.config(digest, fmt.Sprintf("depends_on = [release_migration.m%d]", n)), "replicas = 2", "replicas = 1", 1) + migrations
}

func (f *migFixture) tableExists(n int) (bool, error) {
	var ok bool
	err := f.db.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, f.table(n)).Scan(&ok)
	return ok, err
}

func (f *migFixture) checkTable(n int, want bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := f.tableExists(n)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("table %s exists=%v, want %v", f.table(n), got, want)
		}
		return nil
	}
}

// eventAt returns when the audit event happened, by the database's clock.
func (f *migFixture) eventAt(event string) (time.Time, error) {
	var at time.Time
	err := f.db.QueryRow(`SELECT at FROM release_audit WHERE event = $1 ORDER BY at DESC LIMIT 1`, event).Scan(&at)
	if err == sql.ErrNoRows {
		return at, fmt.Errorf("no audit event %q", event)
	}
	return at, err
}

// Forward: up before the switch. Revert: the switch back first, then the down.
func TestAccMigration_revertSwitchesBackThenRunsDown(t *testing.T) {
	testMigrationRevert(t, newMigFixture(t), nil)
}

// testMigrationRevert is the revert test; afterUp, when set, also checks the step that ran v2's up.
func testMigrationRevert(t *testing.T, f *migFixture, afterUp resource.TestCheckFunc) {
	if afterUp == nil {
		afterUp = func(*terraform.State) error { return nil }
	}
	v1 := f.release(f.v1, 1, f.migration(1, f.v1, true, ""))
	v2 := f.release(f.v2, 2, f.migration(1, f.v1, true, "")+f.migration(2, f.v2, true, ""))
	upBeforeSwitch := func(*terraform.State) error {
		up, err := f.eventAt("up " + f.id + "_2")
		if err != nil {
			return err
		}
		for _, c := range f.containers() {
			if c.Labels[naming.LabelDigest] != f.v2 {
				continue
			}
			c, err := f.engine.Inspect(context.Background(), c.ID)
			if err != nil {
				return err
			}
			if up.After(c.Created) {
				return fmt.Errorf("v2 container %s was created at %s, before the migration ran at %s", c.Name, c.Created, up)
			}
			t.Logf("migration up of v2 ran at %s; v2 container %s created at %s", up.Format(time.RFC3339Nano), c.Name, c.Created.Format(time.RFC3339Nano))
		}
		return nil
	}
	downAfterSwitchBack := func(*terraform.State) error {
		down, err := f.eventAt("down " + f.id + "_2")
		if err != nil {
			return err
		}
		stopped := 0
		for _, c := range f.containers() {
			if c.Labels[naming.LabelDigest] != f.v2 {
				continue
			}
			if c.Running() {
				return fmt.Errorf("v2 container %s still runs after the revert", c.Name)
			}
			_, _, finished, err := f.engine.ExitCode(context.Background(), c.ID)
			if err != nil {
				return err
			}
			if !down.After(finished) {
				return fmt.Errorf("the down ran at %s, before v2 container %s stopped at %s", down, c.Name, finished)
			}
			t.Logf("v2 container %s stopped at %s; down of v2 ran at %s (%s later)", c.Name, finished.Format(time.RFC3339Nano), down.Format(time.RFC3339Nano), down.Sub(finished))
			stopped++
		}
		if stopped == 0 {
			return fmt.Errorf("no retained v2 container to compare with")
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(s *terraform.State) error {
			return resource.ComposeTestCheckFunc(f.checkDestroyed, f.checkTable(1, false))(s)
		},
		Steps: []resource.TestStep{
			{Config: v1, Check: resource.ComposeTestCheckFunc(f.checkTable(1, true), f.checkServes("1.0.0"))},
			{Config: v2, Check: resource.ComposeTestCheckFunc(f.checkTable(2, true), f.checkServes("2.0.0"), upBeforeSwitch, afterUp)},
			{
				// The revert of the change that introduced v2.
				Config: v1,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_environment.web", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("release_migration.m2", plancheck.ResourceActionDestroy),
				}},
				Check: resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), f.checkTable(2, false), f.checkTable(1, true), downAfterSwitchBack),
			},
		},
	})
}

// Without create_before_destroy Terraform runs the destroy first; the down
// refuses while v2 serves, says what to do, and nothing is lost.
func TestAccMigration_revertWithoutLifecycleRefuses(t *testing.T) {
	f := newMigFixture(t)
	v1 := f.release(f.v1, 1, f.migration(1, f.v1, true, ""))
	v2 := f.release(f.v2, 2, f.migration(1, f.v1, true, "")+f.migration(2, f.v2, false, ""))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: v1},
			{Config: v2, Check: f.checkTable(2, true)},
			{
				Config: v1,
				ExpectError: expectDiag(`(?s)Migration Still Needed.*environment ` + f.env + `/web still serves .*` + f.v2 +
					`.*create_before_destroy = true.*terraform apply -target=release_environment`),
			},
			{
				// Nothing was lost: v2 serves, its table is there, and the state still holds v2.
				Config: v2,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: resource.ComposeTestCheckFunc(f.checkServes("2.0.0"), f.checkTable(2, true)),
			},
		},
	})
}

// A failing up leaves v1 serving, the database unchanged and no migration in state.
func TestAccMigration_failingUpLeavesV1(t *testing.T) {
	f := newMigFixture(t)
	v1 := f.release(f.v1, 1, f.migration(1, f.v1, true, ""))
	v2 := f.release(f.v2, 2, f.migration(1, f.v1, true, "")+f.migration(2, f.v2, true, `MIGRATE_FAIL = "up"`))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: v1},
			{Config: v2, ExpectError: expectDiag(`(?s)Migration Up Failed.*exited with code 1.*not recorded as applied.*Output`)},
			{
				Config: v1,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(), // the failed migration is not in state, the environment is still on v1
				}},
				Check: resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), f.checkTable(2, false), f.checkTable(1, true)),
			},
		},
	})
}

// Destroying a chain of three runs the downs in reverse order.
func TestAccMigration_chainDestroysInReverse(t *testing.T) {
	f := newMigFixture(t)
	// The environment the migrations name is on the host: a down refuses a name that never was.
	chain := f.release(f.v1, 3, f.migration(1, f.v1, true, "")+f.migration(2, f.v1, true, "")+f.migration(3, f.v2, true, ""))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			var at [4]time.Time
			for n := 1; n <= 3; n++ {
				var err error
				if at[n], err = f.eventAt(fmt.Sprintf("down %s_%d", f.id, n)); err != nil {
					return err
				}
				if ok, _ := f.tableExists(n); ok {
					return fmt.Errorf("table %s remains", f.table(n))
				}
			}
			if !(at[3].Before(at[2]) && at[2].Before(at[1])) {
				return fmt.Errorf("downs ran at 3=%s 2=%s 1=%s, want 3, then 2, then 1", at[3], at[2], at[1])
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: chain,
			Check:  resource.ComposeTestCheckFunc(f.checkTable(1, true), f.checkTable(2, true), f.checkTable(3, true)),
		}},
	})
}

// A migration is immutable unless replacement is allowed, and one without a
// down command is only dropped when that is explicitly allowed.
func TestAccMigration_immutableAndIrreversible(t *testing.T) {
	f := newMigFixture(t)
	m := f.migration(1, f.v1, true, "")
	noDown := strings.Replace(m, `  down_command = ["/app", "migrate", "down"]`+"\n", "", 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: noDown, Check: f.checkTable(1, true)},
			{
				Config:      strings.Replace(noDown, `["/app", "migrate", "up"]`, `["/app", "migrate", "up", "--again"]`, 1),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Migration Cannot Change.*add a new release_migration.*allow_replace = true`),
			},
			{
				Config:      `# the migration is removed from the configuration`,
				ExpectError: expectDiag(`(?s)Migration Has No Down Command.*allow_irreversible = true`),
			},
			{Config: strings.Replace(noDown, "  lifecycle", "  allow_irreversible = true\n  lifecycle", 1)},
			{Config: `# removed, now allowed`, Check: f.checkTable(1, true)}, // the change stays in the database
		},
	})
}

// Fault 10: environments = ["prod"] when the environment is production
// scoped the serving check to nothing, so removing the migration ran its
// down and dropped the schema under the environment that served the image
// needing it. A name that is not on the host and never was is now refused:
// at the down, before anything runs, and at plan when it is changed.
func TestAccFault10_migrationEnvironmentsTypo(t *testing.T) {
	f := newMigFixture(t)
	withEnvironment := func(m, name string) string {
		return strings.Replace(m, fmt.Sprintf("environments = [%q]", f.env), fmt.Sprintf("environments = [%q]", name), 1)
	}
	typo := f.env + "x"
	m1 := f.migration(1, f.v1, true, "")
	v1 := f.release(f.v1, 1, m1)
	v2typo := f.release(f.v2, 2, m1+withEnvironment(f.migration(2, f.v2, true, ""), typo))
	v2fixed := f.release(f.v2, 2, m1+f.migration(2, f.v2, true, ""))
	// The migration of v2 removed while v2 still serves.
	v2withoutM2 := f.release(f.v2, 1, m1)
	unknown := func(name, then string) *regexp.Regexp {
		return expectDiag(`(?s)Unknown Migration Environments.*environments names ` + name + `, which is not an environment on .* and never was.*` +
			`Environments on the host: [^.]*\b` + f.env + `\b.*` + then)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(s *terraform.State) error {
			return resource.ComposeTestCheckFunc(f.checkDestroyed, f.checkTable(1, false), f.checkTable(2, false))(s)
		},
		Steps: []resource.TestStep{
			{Config: v1, Check: f.checkTable(1, true)},
			{Config: v2typo, Check: resource.ComposeTestCheckFunc(f.checkTable(2, true), f.checkServes("2.0.0"))},
			{
				Config:      v2withoutM2,
				ExpectError: unknown(typo, `The down command was not run`),
			},
			{
				// Changing environments to another name that is not on the host is refused at plan.
				Config:      withEnvironment(v2fixed, typo+"y"),
				PlanOnly:    true,
				ExpectError: unknown(typo+"y", `Nothing was changed`),
			},
			{
				// Named right, with the schema still there under v2.
				Config: v2fixed,
				Check:  resource.ComposeTestCheckFunc(f.checkTable(2, true), f.checkServes("2.0.0")),
			},
			{
				// Named right, the serving check protects the schema.
				Config:      v2withoutM2,
				ExpectError: expectDiag(`(?s)Migration Still Needed.*environment ` + f.env + `/web still serves`),
			},
			{Config: v2fixed, Check: resource.ComposeTestCheckFunc(f.checkTable(2, true), f.checkServes("2.0.0"))},
		},
	})
}

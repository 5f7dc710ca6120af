package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSanitizeIdent(t *testing.T) {
	for in, want := range map[string]string{
		"1.0.0":                 "1_0_0",
		"2.0.0-RC.1":            "2_0_0_rc_1",
		"":                      "unknown",
		"a;DROP TABLE":          "a_drop_table",
		strings.Repeat("9", 80): strings.Repeat("9", 50),
	} {
		if got := sanitizeIdent(in); got != want {
			t.Errorf("sanitizeIdent(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadMigration(t *testing.T) {
	m, err := loadMigration(env(map[string]string{"APP_VERSION": "1.0.0"}))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "1.0.0" || m.Table != "items_v1_0_0" || m.FailUp || m.FailDown {
		t.Fatalf("%+v", m)
	}
	if !strings.HasPrefix(m.UpSQL, "CREATE TABLE items_v1_0_0 ") || m.DownSQL != "DROP TABLE IF EXISTS items_v1_0_0" {
		t.Fatalf("default SQL: %q / %q", m.UpSQL, m.DownSQL)
	}

	m, err = loadMigration(env(map[string]string{
		"APP_VERSION":             "1.0.0",
		"MIGRATION_VERSION":       "2024-06",
		"MIGRATION_SQL_UP":        "CREATE TABLE t (x int)",
		"MIGRATION_SQL_DOWN":      "DROP TABLE t",
		"MIGRATE_FAIL":            "down",
		"MIGRATE_CONNECT_TIMEOUT": "2s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := migration{Version: "2024-06", Table: "items_v2024_06", UpSQL: "CREATE TABLE t (x int)",
		DownSQL: "DROP TABLE t", FailDown: true, ConnectTimeout: 2 * time.Second}
	if m != want {
		t.Fatalf("got %+v, want %+v", m, want)
	}

	for v, up := range map[string]bool{"1": true, "true": true, "up": true, "down": false, "0": false, "": false} {
		m, err := loadMigration(env(map[string]string{"MIGRATE_FAIL": v}))
		if err != nil || m.FailUp != up {
			t.Errorf("MIGRATE_FAIL=%q: FailUp=%t err=%v", v, m.FailUp, err)
		}
	}
	m, _ = loadMigration(env(nil))
	if m.Version != defaultVersion {
		t.Errorf("default version %q", m.Version)
	}
}

// TestMigrateAgainstPostgres runs only with a database:
// TESTAPP_DATABASE_URL=postgres://... go test ./...
// (scripts/stack.sh env exports RELEASE_TEST_DATABASE_URL; either works).
func TestMigrateAgainstPostgres(t *testing.T) {
	dsn := os.Getenv("TESTAPP_DATABASE_URL")
	if dsn == "" {
		dsn = os.Getenv("RELEASE_TEST_DATABASE_URL")
	}
	if dsn == "" {
		t.Skip("set TESTAPP_DATABASE_URL (or RELEASE_TEST_DATABASE_URL) to run against PostgreSQL")
	}
	version := fmt.Sprintf("unittest-%d", time.Now().UnixNano())
	table := "items_v" + sanitizeIdent(version)
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tableExists := func() bool {
		var ok bool
		if err := db.QueryRow("SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	recorded := func() bool {
		var ok bool
		if err := db.QueryRow("SELECT EXISTS (SELECT 1 FROM app_migrations WHERE version = $1)", version).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	migrate := func(dir string, extra map[string]string) (int, string) {
		vars := map[string]string{"DATABASE_URL": dsn, "MIGRATION_VERSION": version}
		for k, v := range extra {
			vars[k] = v
		}
		var out, errb bytes.Buffer
		code := realMain([]string{"migrate", dir}, env(vars), &out, &errb)
		return code, out.String() + errb.String()
	}
	t.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)
		_, _ = db.ExecContext(context.Background(), "DELETE FROM app_migrations WHERE version = $1", version)
	})

	if code, out := migrate("up", map[string]string{"MIGRATE_FAIL": "1"}); code == 0 || !strings.Contains(out, "simulated failure") {
		t.Fatalf("failing up: %d %s", code, out)
	}
	if tableExists() || recorded() {
		t.Fatal("a failed up left changes behind")
	}
	if code, out := migrate("up", nil); code != 0 || !strings.Contains(out, "applied version "+version) {
		t.Fatalf("up: %d %s", code, out)
	}
	if !tableExists() || !recorded() {
		t.Fatal("up did not create the table and record the version")
	}
	if code, out := migrate("up", nil); code != 0 || !strings.Contains(out, "already applied") {
		t.Fatalf("second up: %d %s", code, out)
	}
	if code, out := migrate("down", map[string]string{"MIGRATE_FAIL": "down"}); code == 0 {
		t.Fatalf("failing down: %d %s", code, out)
	}
	if !tableExists() || !recorded() {
		t.Fatal("a failed down changed something")
	}
	if code, out := migrate("down", nil); code != 0 || !strings.Contains(out, "reverted version "+version) {
		t.Fatalf("down: %d %s", code, out)
	}
	if tableExists() || recorded() {
		t.Fatal("down left the table or the record")
	}
	if code, out := migrate("down", nil); code != 0 || !strings.Contains(out, "not applied") {
		t.Fatalf("second down: %d %s", code, out)
	}
}

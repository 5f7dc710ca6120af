package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver
)

// migrationLockID is the PostgreSQL advisory lock that serialises
// concurrent migrations of this app.
const migrationLockID = 7262019

// migration is what "app migrate up|down" does; see README.md.
type migration struct {
	Version        string
	Table          string // items_v<sanitised version>
	UpSQL          string
	DownSQL        string
	FailUp         bool
	FailDown       bool
	ConnectTimeout time.Duration
}

func loadMigration(getenv func(string) string) (migration, error) {
	version := strings.TrimSpace(getenv("MIGRATION_VERSION"))
	if version == "" {
		version = strings.TrimSpace(getenv("APP_VERSION"))
	}
	if version == "" {
		version = defaultVersion
	}
	m := migration{
		Version:        version,
		Table:          "items_v" + sanitizeIdent(version),
		ConnectTimeout: 15 * time.Second,
	}
	m.UpSQL = fmt.Sprintf("CREATE TABLE %s (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())", m.Table)
	m.DownSQL = fmt.Sprintf("DROP TABLE IF EXISTS %s", m.Table)
	if v := strings.TrimSpace(getenv("MIGRATION_SQL_UP")); v != "" {
		m.UpSQL = v
	}
	if v := strings.TrimSpace(getenv("MIGRATION_SQL_DOWN")); v != "" {
		m.DownSQL = v
	}

	var errs []error
	switch v := strings.ToLower(strings.TrimSpace(getenv("MIGRATE_FAIL"))); v {
	case "", "0", "false", "no":
	case "1", "true", "yes":
		m.FailUp, m.FailDown = true, true
	case "up":
		m.FailUp = true
	case "down":
		m.FailDown = true
	default:
		errs = append(errs, fmt.Errorf("MIGRATE_FAIL: %q is none of 1, true, up, down, 0, false", v))
	}
	if v := strings.TrimSpace(getenv("MIGRATE_CONNECT_TIMEOUT")); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MIGRATE_CONNECT_TIMEOUT: %w", err))
		} else {
			m.ConnectTimeout = d
		}
	}
	return m, errors.Join(errs...)
}

// sanitizeIdent turns a version such as "1.0.0-rc.1" into "1_0_0_rc_1",
// usable inside a PostgreSQL identifier.
func sanitizeIdent(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" {
		out = "unknown"
	}
	if len(out) > 50 { // identifiers are limited to 63 bytes
		out = out[:50]
	}
	return out
}

func migrateMain(direction string, getenv func(string) string, stdout io.Writer) error {
	m, err := loadMigration(getenv)
	if err != nil {
		return err
	}
	dsn := strings.TrimSpace(getenv("DATABASE_URL"))
	if dsn == "" {
		return errors.New("DATABASE_URL is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.ConnectTimeout+2*time.Minute)
	defer cancel()

	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	if err := waitForDB(ctx, db, m.ConnectTimeout); err != nil {
		return err
	}
	return m.run(ctx, db, direction, stdout)
}

// waitForDB pings until the database answers or timeout passes, so that a
// migration started together with its database does not fail needlessly.
func waitForDB(ctx context.Context, db *sql.DB, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connect to database: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to database: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// run applies (up) or reverts (down) the migration in one transaction.
// Both directions are idempotent: applying an applied version or reverting
// one that is not applied does nothing and succeeds.
func (m migration) run(ctx context.Context, db *sql.DB, direction string, stdout io.Writer) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockID); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS app_migrations (
		version    text PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create app_migrations: %w", err)
	}
	var applied bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM app_migrations WHERE version = $1)", m.Version).Scan(&applied); err != nil {
		return fmt.Errorf("read app_migrations: %w", err)
	}

	var did string
	switch direction {
	case "up":
		if applied {
			did = fmt.Sprintf("migrate up: version %s is already applied, nothing to do", m.Version)
			break
		}
		if _, err := tx.ExecContext(ctx, m.UpSQL); err != nil {
			return fmt.Errorf("version %s: %s: %w", m.Version, m.UpSQL, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO app_migrations (version) VALUES ($1)", m.Version); err != nil {
			return fmt.Errorf("record version %s: %w", m.Version, err)
		}
		if m.FailUp {
			return fmt.Errorf("version %s: simulated failure (MIGRATE_FAIL) after %q; rolled back", m.Version, m.UpSQL)
		}
		did = fmt.Sprintf("migrate up: applied version %s: %s", m.Version, m.UpSQL)
	case "down":
		if !applied {
			did = fmt.Sprintf("migrate down: version %s is not applied, nothing to do", m.Version)
			break
		}
		if _, err := tx.ExecContext(ctx, m.DownSQL); err != nil {
			return fmt.Errorf("version %s: %s: %w", m.Version, m.DownSQL, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM app_migrations WHERE version = $1", m.Version); err != nil {
			return fmt.Errorf("unrecord version %s: %w", m.Version, err)
		}
		if m.FailDown {
			return fmt.Errorf("version %s: simulated failure (MIGRATE_FAIL) after %q; rolled back", m.Version, m.DownSQL)
		}
		did = fmt.Sprintf("migrate down: reverted version %s: %s", m.Version, m.DownSQL)
	default:
		return fmt.Errorf("unknown direction %q", direction)
	}

	versions, err := appliedVersions(ctx, tx)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	fmt.Fprintln(stdout, did)
	fmt.Fprintf(stdout, "migrate %s: applied versions now: [%s]\n", direction, strings.Join(versions, " "))
	return nil
}

func appliedVersions(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, "SELECT version FROM app_migrations ORDER BY applied_at, version")
	if err != nil {
		return nil, fmt.Errorf("list app_migrations: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

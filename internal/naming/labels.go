package naming

// Label keys. Managed marks everything the provider owns on a host.
const (
	LabelManaged     = "release.managed"
	LabelKind        = "release.kind"
	LabelEnvironment = "release.environment"
	LabelService     = "release.service"
	LabelImage       = "release.image"
	LabelDigest      = "release.digest"
	LabelRevision    = "release.revision"
	LabelTrack       = "release.track"
	LabelReplica     = "release.replica"
	// LabelReplicas is on a Swarm service: how many replicas it runs.
	LabelReplicas   = "release.replicas"
	LabelDeployedAt = "release.deployed_at"
	LabelConfigHash = "release.config_hash"
	LabelHistory    = "release.history"
	LabelPort       = "release.port"
	// LabelRouter names the router: on the router's own container and on
	// every application container it serves.
	LabelRouter            = "release.router"
	LabelRouterPorts       = "release.router.ports"
	LabelRouterMetricsPort = "release.router.metrics_port"
	LabelRouterNetwork     = "release.router.network"
	LabelMigration         = "release.migration"
	LabelMigrationDir      = "release.migration.direction"
	// LabelCommand is what an action asks of a canary in flight (abort,
	// promote, hold), on a KindCommand marker.
	LabelCommand = "release.command"
	// LabelJudgment holds a canary's analysis so far (its intervals,
	// compressed), on a KindJudgment marker; LabelLook numbers the marker.
	LabelJudgment = "release.judgment"
	LabelLook     = "release.look"
)

// Kind is what a managed object is, in LabelKind.
type Kind string

const (
	KindApp       Kind = "app"
	KindRouter    Kind = "router"
	KindMigration Kind = "migration"
	// KindServed records that a revision had all of an environment's
	// traffic: a container created and never started, whose labels are the record.
	KindServed Kind = "served"
	// KindCommand is an action's command to the apply running a canary: a
	// container created and never started, read at every analysis.
	KindCommand Kind = "command"
	// KindJudgment keeps a canary's analysis with it, so a resumed canary
	// continues the same test: a container created and never started.
	KindJudgment Kind = "judgment"
)

// Track is the part an application container plays in a rollout, in LabelTrack.
type Track string

const (
	// TrackStable serves every user outside a canary.
	TrackStable Track = "stable"
	// TrackCanary is a new revision on trial. A promoted canary keeps the label.
	TrackCanary Track = "canary"
	// TrackBaseline is the stable revision started afresh beside a canary,
	// so that both are compared at the same age.
	TrackBaseline Track = "baseline"
)

// Managed is the label filter that lists everything the provider owns.
func Managed() map[string]string { return map[string]string{LabelManaged: "true"} }

// Is reports whether labels carry the given kind.
func (k Kind) Is(labels map[string]string) bool { return labels[LabelKind] == string(k) }

// TrackOf reads a container's track; containers from before tracks existed are stable.
func TrackOf(labels map[string]string) Track {
	switch t := Track(labels[LabelTrack]); t {
	case TrackCanary, TrackBaseline:
		return t
	}
	return TrackStable
}

package registry

import "fmt"

// Kind says which of the failures users meet an error is, so that callers can
// word a diagnostic that tells the user what to do.
type Kind int

const (
	KindUnknown Kind = iota
	KindTagNotFound
	KindRepositoryNotFound
	KindDigestNotFound
	KindUnauthorized
	KindUnreachable
	KindPlatformNotFound
	KindProtocol
	KindRateLimited
)

func (k Kind) String() string {
	switch k {
	case KindTagNotFound:
		return "tag not found"
	case KindRepositoryNotFound:
		return "repository not found"
	case KindDigestNotFound:
		return "digest not found"
	case KindUnauthorized:
		return "access refused"
	case KindUnreachable:
		return "registry unreachable"
	case KindPlatformNotFound:
		return "platform not found"
	case KindProtocol:
		return "unexpected registry response"
	case KindRateLimited:
		return "rate limited"
	}
	return "registry error"
}

// Error is a failed registry operation.
type Error struct {
	Kind       Kind
	Registry   string // host[:port]
	Repository string // path within the registry
	Reference  string // tag or digest
	Message    string // what the registry or transport said
	Err        error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s/%s", e.Kind, e.Registry, e.Repository)
	if e.Reference != "" {
		msg += " (" + e.Reference + ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

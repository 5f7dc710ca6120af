package docker

import cerrdefs "github.com/containerd/errdefs"

// IsConflict reports whether the Engine refused because the object exists
// (a container name taken): Docker creates names atomically.
func IsConflict(err error) bool { return cerrdefs.IsConflict(err) }

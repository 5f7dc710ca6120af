// Package naming owns the contract between the provider's packages and the
// Docker host: the label keys every managed object carries, the values of
// its kind and track, and the names of containers, networks and router
// servers. Each name is written and parsed here and nowhere else, so the
// record on the host reads back the same whichever package wrote it.
package naming

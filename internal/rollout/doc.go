// Package rollout decides and carries out what happens to an environment's
// containers and route.
//
// One pure function, Decide, turns what Observe read from the host and what
// the Spec asks for into a named Decision: a first release, a repair of the
// serving release, a rollback to a retained revision, a hard switch, a
// canary, or the resume or abort of a canary an interrupted apply left. The
// plan shows that decision and Deploy carries it out with the executor for
// its kind, so the two cannot disagree. Labels on the containers are the
// record, so a crash at any step leaves a state that Observe reads back.
package rollout

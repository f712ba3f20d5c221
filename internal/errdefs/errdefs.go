// Package errdefs holds the error classes shared by Berth's components.
//
// Domain code wraps a class with the identity of the object it concerns,
// for example fmt.Errorf("cluster %q: %w", name, errdefs.ErrNotFound), and
// tests with errors.Is. Only internal/api turns these classes into AWS error
// shapes on the wire.
package errdefs

import "errors"

var (
	// ErrNotFound means the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means an object with the same identity exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means a concurrent change won: the caller's view is stale.
	ErrConflict = errors.New("conflict")
	// ErrInvalidArgument means the request itself is wrong.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition means the object is not in a state that allows the operation.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrCompacted means history older than the requested revision is gone.
	ErrCompacted = errors.New("revision compacted")
	// ErrClosed means the component has been shut down.
	ErrClosed = errors.New("closed")
)

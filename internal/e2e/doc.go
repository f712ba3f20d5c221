// Package e2e holds Berth's end-to-end tests: each starts a real control
// plane on a loopback port and drives it over HTTP with the real AWS SDK for
// Go v2 and the real AWS CLI, exactly as users do.
package e2e

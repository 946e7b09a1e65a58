// Package webhook delivers a task to its HTTP target, once: the request
// with the Hourglass-* headers and their signatures (wire's scheme), the
// target policy every connection is checked against, and the reading of
// the answer (a status line for last_error; 429 and 503 as a Retry-After).
// The leader's shell (package scheduler) decides when and how often; this
// package only sends.
package webhook

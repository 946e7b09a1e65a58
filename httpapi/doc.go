// Package httpapi is Hourglass's public HTTP API (v1, JSON): request
// decoding and validation, the error shape, scoped bearer tokens (and a
// required client certificate), a cap on requests in progress, forwarding
// to the leader, health and readiness, metrics and the console's files.
//
// Where a write enters: a handler decodes and checks its request, then
// calls one method of the typed write path (package service), which builds
// the raft command and returns a typed result; the rules of what a write
// may change live in service and fsm, not here. Pull workers' calls go to
// the leader's scheduler (Workers). Reads go to the state machine (Store).
// The JSON shapes are package wire's, which the SDK shares.
//
// Every client error is a 4xx with {"error":{"code","message"}} whose
// message names the offending field, and changes nothing.
package httpapi

// Package httpapi is Hourglass's public HTTP API (v1, JSON): request
// decoding and validation, the error shape, scoped bearer tokens (and a
// required client certificate), a cap on requests in progress, forwarding
// to the leader, health and readiness, metrics and the console's files. It turns requests into fsm commands and proposes them; the
// rules of what a command may change live in fsm and scheduler, not here.
//
// Every client error is a 4xx with {"error":{"code","message"}} whose
// message names the offending field, and changes nothing.
package httpapi

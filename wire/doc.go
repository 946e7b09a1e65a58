// Package wire is the contract between Hourglass servers and their
// clients: the JSON bodies of the HTTP API (requests, answers, error
// codes) and the webhook delivery's headers and signature scheme. The
// server (httpapi, webhook) and the Go SDK (client, which re-exports these
// names) both import it, so neither depends on the other.
package wire

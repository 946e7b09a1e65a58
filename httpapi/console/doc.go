// Package console is Hourglass's web console: static files (HTML, one
// script, one style sheet) embedded in the binary and served at "/". No
// build step and no CDN: the page talks to the node's own HTTP API (the
// overview, tasks and queues pages) and reads its /metrics.
package console

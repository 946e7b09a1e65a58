// Package labels bounds the label values that clients choose (queue names)
// in Prometheus metrics: the first N distinct values keep their own
// series, every later one is counted under one aggregate value, so that
// the size of /metrics does not grow with names an API client makes up.
package labels

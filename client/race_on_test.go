//go:build race

package client_test

// raceEnabled: the tests run under -race, many times slower.
const raceEnabled = true

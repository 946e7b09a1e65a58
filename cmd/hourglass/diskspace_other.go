//go:build !unix

package main

import "errors"

func diskSpace(string) (free, size uint64, err error) {
	return 0, 0, errors.New("disk space: not reported on this platform")
}

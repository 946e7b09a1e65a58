package main

import (
	"runtime/debug"
	"strings"
)

// stampedVersion may be set at build time with
// -ldflags "-X main.stampedVersion=v1.2.3"; it wins over the build info.
var stampedVersion string

// buildVersion says which build this binary is: the stamped version, the
// module's version when built with "go install module@version", or the
// commit the Go toolchain recorded from the checkout ("-dirty" when it had
// uncommitted changes), with its time. "dev" only when none is known
// (go run, or a build outside a checkout).
func buildVersion() string {
	if stampedVersion != "" {
		return stampedVersion
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return versionOf(info)
}

func versionOf(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	rev := settings["vcs.revision"]
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "dev-" + rev
	if settings["vcs.modified"] == "true" {
		v += "-dirty"
	}
	if at := settings["vcs.time"]; at != "" {
		v += " (" + strings.TrimSuffix(at, "Z") + "Z)"
	}
	return v
}

package main

import (
	"runtime/debug"
	"strings"
)

// version is stamped at build time with -ldflags "-X main.version=…" (the
// Dockerfile does); otherwise it comes from the build information Go
// records: the module version and the VCS revision.
var version = ""

// fullVersion is what `version`, the log and P/bridge/info say.
func fullVersion() string { return stampedOr(version) }

// stampedOr is the stamped version, else the one from the build
// information.
func stampedOr(stamped string) string {
	if stamped != "" {
		return stamped
	}
	return versionFrom(debug.ReadBuildInfo())
}

func versionFrom(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "dev"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" && !strings.Contains(v, rev[:min(len(rev), 12)]) {
		v += " (" + rev[:min(len(rev), 12)]
		if modified == "true" {
			v += ", modified"
		}
		v += ")"
	}
	return v
}

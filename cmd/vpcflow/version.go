package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/vpcflow/vpcflow/topology"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123"
// (the Makefile does). Unset, they come from the module's build info.
var (
	version = ""
	commit  = ""
)

// buildVersion returns the version and commit of this binary.
func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		if rev == "" {
			dirty := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if rev != "" && dirty {
				rev += "-dirty"
			}
		}
	}
	if ver == "" {
		ver = "devel"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

func versionString() string {
	v, c := buildVersion()
	return v + " (" + c + ")"
}

func (c *cli) version(args []string) int {
	k := c.command("version", "", "Print vpcflow's version, commit, Go version and the store schema it writes.", "vpcflow version")
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	v, rev := buildVersion()
	fmt.Fprintf(c.stdout, "vpcflow %s\ncommit: %s\ngo: %s %s/%s\nstore schema: %s\n", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH, topology.SchemaVersion)
	return exitOK
}

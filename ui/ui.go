// Package ui is vpcflow's topology page, served at /ui by `vpcflow serve`:
// plain HTML, CSS and JavaScript embedded in the binary (no build step),
// that reads the REST API and /metrics from the browser. It shows VPCs
// with their vSwitches and hosts, route entries, chassis and switches,
// live drop and forward counters, and a trace form that draws the path.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var files embed.FS

// Prefix is where the page is served.
const Prefix = "/ui"

// Handler serves the page under Prefix ("/ui" redirects to "/ui/"). The
// files hold no data (the page asks the API for it, with the token the
// user gives when the API wants one), so they are served without one.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fileServer := http.StripPrefix(Prefix+"/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == Prefix {
			http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}

// Serves reports whether path belongs to the page.
func Serves(path string) bool { return path == Prefix || strings.HasPrefix(path, Prefix+"/") }

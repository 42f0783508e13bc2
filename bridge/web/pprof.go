//go:build pprof

package web

import (
	"net/http"
	"net/http/pprof"
	"runtime"
)

// A sample every 4 KB allocated instead of every 512 KB: a fleet's per-car
// objects are small, and the default rate would attribute them by chance.
func init() { runtime.MemProfileRate = 4096 }

// Built with -tags pprof (the load harness's -profile does), the bridge
// serves Go's profiles under /debug/pprof/. Release builds leave them out:
// they would expose the process's memory to anyone who reaches the page.
func debugHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
}

//go:build !pprof

package web

import "net/http"

func debugHandlers(*http.ServeMux) {}

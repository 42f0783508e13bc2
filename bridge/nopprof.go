//go:build !pprof

package bridge

import "net/http"

func debugHandlers(*http.ServeMux) {}

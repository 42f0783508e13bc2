package fordapi

// Clip shortens text from outside (Ford's answers, what a user sent) to n
// bytes for a log line or an error, marking the cut.
func Clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

package both

import "testing"

// TestOneCodeTopicTellsTheBackendsApart: FordConnect's landing address
// (http(s) with a state) goes to FordConnect; FordPass's redirect, a bare
// code, or anything else goes to FordPass, whose checks refuse what is not
// a code.
func TestOneCodeTopicTellsTheBackendsApart(t *testing.T) {
	for in, fc := range map[string]bool{
		"http://localhost:8080/fordconnect/callback?code=abc&state=0123456789abcdef":     true,
		" https://example.org/cb?state=0123456789abcdef&code=abc \n":                     true,
		"fordapp://userauthorized/?code=abcdefabcdefabcdefabcdefabcdefabcdef":            false,
		"abcdefabcdefabcdefabcdefabcdefabcdefabcdef":                                     false,
		"http://localhost:8080/fordconnect/callback?code=abc":                            false, // no state: not FordConnect's
		"lincolnapp://userauthorized/?code=abcdefabcdefabcdefabcdefabcdefabcdef&state=x": false,
		"":          false,
		"%zz://bad": false,
	} {
		if got := isFordConnectLanding(in); got != fc {
			t.Errorf("%q: FordConnect %v, want %v", in, got, fc)
		}
	}
}

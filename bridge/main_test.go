package bridge_test

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestMain lets more end-to-end tests run at once than the machine has
// cores: they spend their time waiting on a broker, a simulator and real
// timers, not on the CPU. An explicit -parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		_ = f.Value.Set(strconv.Itoa(max(16, 8*runtime.GOMAXPROCS(0))))
	}
	os.Exit(m.Run())
}

package bridge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestDoctorReportsADamagedCallCount: a corrupt calls.json is a warning in
// doctor, saying the bridge assumed this hour's share spent.
func TestDoctorReportsADamagedCallCount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "calls.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := fordapi.NewBudget(path, 250, nil)
	if err == nil {
		t.Fatal("a damaged file loaded without a word")
	}
	c := checkBudget(b, time.Now())
	if c.Status != Warn || !strings.Contains(c.Finding, "calls.json) was unreadable") {
		t.Fatalf("doctor: %+v", c)
	}
}

package both_test

import (
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
)

// TestBudgetsAreBoth: the bridge closes every budget the backend holds at
// shutdown; with both backends that is FordPass's and FordConnect's count
// of Query requests (which was left unsaved before).
func TestBudgetsAreBoth(t *testing.T) {
	region, _ := fordapi.LookupRegion("usa")
	fp, err := fordapi.New(fordapi.Config{Region: region, BaseURL: "http://127.0.0.1:9", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := fordconnect.New(fordconnect.Config{BaseURL: "http://127.0.0.1:9", ClientID: "id", ClientSecret: "secret",
		RedirectURL: fordconnect.DefaultRedirect, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var b fordapi.Backend = both.New(fp, fc)
	h, ok := b.(fordapi.BudgetHolder)
	if !ok {
		t.Fatal("both holds two budgets and does not say so")
	}
	got := h.Budgets()
	if len(got) != 2 || got[0] != fp.Budget() || got[1] != fc.Budget() {
		t.Fatalf("budgets %v", got)
	}
	for _, budget := range got {
		if err := budget.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

package fordapi_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Every number comes back as it went in and prints as before; a word,
// the empty word and a missing value are never numbers.
func TestValueNumbersAndWords(t *testing.T) {
	t.Parallel()
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 12.5, 99999.5, 1e-300, math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64, math.Inf(1), math.Inf(-1)} {
		v := fordapi.Number(f)
		if !v.IsNumber() || v.Float() != f || math.Signbit(v.Float()) != math.Signbit(f) {
			t.Errorf("Number(%v): IsNumber %v, Float %v", f, v.IsNumber(), v.Float())
		}
		if v == (fordapi.Value{}) {
			t.Errorf("Number(%v) is the missing value", f)
		}
	}
	if v := fordapi.Number(math.NaN()); !v.IsNumber() || !math.IsNaN(v.Float()) {
		t.Errorf("Number(NaN): IsNumber %v, Float %v", v.IsNumber(), v.Float())
	}
	if got := fordapi.Number(12.5).String(); got != "12.5" {
		t.Errorf("12.5 prints as %q", got)
	}
	if fordapi.Number(3) == fordapi.Number(4) || fordapi.Number(3) != fordapi.Number(3) {
		t.Error("numbers compare wrong")
	}
	for _, v := range []fordapi.Value{{}, fordapi.Word(""), fordapi.Word("locked")} {
		if v.IsNumber() || v.Float() != 0 {
			t.Errorf("%q: IsNumber %v, Float %v", v.String(), v.IsNumber(), v.Float())
		}
	}
	if fordapi.Word("0") == fordapi.Number(0) {
		t.Error("the word 0 equals the number 0")
	}
	b, _ := json.Marshal([]fordapi.Value{fordapi.Number(0), fordapi.Word("on"), fordapi.Number(-2.25)})
	if string(b) != `[0,"on",-2.25]` {
		t.Errorf("JSON: %s", b)
	}
}

package bridge

import (
	"os"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

func benchVehicle(b testing.TB) (*vehicle, *fordapi.Telemetry) {
	b.Helper()
	data, err := os.ReadFile("../fordapi/testdata/telemetry_ev.json")
	if err != nil {
		b.Fatal(err)
	}
	_, tel, err := fordapi.ParseTelemetry(data)
	if err != nil {
		b.Fatal(err)
	}
	m := NewMetrics()
	c := &core{cfg: config.Config{TopicPrefix: "fordpass", StateDir: b.TempDir()}, p: "fordpass", t: mqttapi.New("fordpass"), m: m, log: zap.NewNop(), now: time.Now}
	br := &Bridge{core: c, pub: &publisher{core: c, cache: retainedCache{m: map[string]string{}}}, shapes: loadShapes(b.TempDir(), zap.NewNop())}
	link := carLink{br, &fordAccount{core: c}}
	return &vehicle{host: link, set: link.settings(), vin: "1FTEW1EP000000001", waiters: map[chan *fordapi.Telemetry]struct{}{}}, tel
}

// BenchmarkPublishUnchanged is the diff of a telemetry update that changes
// nothing: every field compared with what was last published, nothing sent.
func BenchmarkPublishUnchanged(b *testing.B) {
	v, tel := benchVehicle(b)
	v.tel = tel
	v.publishFields()
	// Each update is a new Telemetry with the same values, as from Ford.
	same := []*fordapi.Telemetry{tel.With("odometer", tel.Get("odometer")), tel}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.tel = same[i%2]
		v.publishFields()
	}
}

// BenchmarkPublishOneChange is the diff plus the state JSON of an update
// that changes one field.
func BenchmarkPublishOneChange(b *testing.B) {
	v, tel := benchVehicle(b)
	v.tel = tel
	v.publishFields()
	odo := []*fordapi.Telemetry{tel.With("odometer", fordapi.Number(1)), tel.With("odometer", fordapi.Number(2))}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.tel = odo[i%2]
		v.publishFields()
	}
}

func BenchmarkParseCommand(b *testing.B) {
	payload := []byte(`{"command":"lock","id":"node-red-1234"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCommand(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCarUpdateUnchanged is all a car does with an update that
// changes nothing: the fields missing from it (none), the waiters, the
// diff.
func BenchmarkCarUpdateUnchanged(b *testing.B) {
	v, tel := benchVehicle(b)
	v.publish(tel)
	same := []*fordapi.Telemetry{tel.With("odometer", tel.Get("odometer")), tel}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.publish(same[i%2])
	}
}

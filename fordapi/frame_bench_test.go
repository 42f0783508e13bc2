package fordapi

import (
	"os"
	"testing"
)

// BenchmarkUnchangedDelta is the client's work for a websocket delta that
// changes nothing a user sees (a metric re-sent with its value): decode the
// frame, merge it into the record (normalising only the metric it names),
// and hand out the record's telemetry.
func BenchmarkUnchangedDelta(b *testing.B) {
	data, err := os.ReadFile("testdata/truck_record.json")
	if err != nil {
		b.Fatal(err)
	}
	doc, _, err := ParseTelemetry(data)
	if err != nil {
		b.Fatal(err)
	}
	c := &Client{}
	frame := []byte(`{"_data":{"metrics":{"odometer":{"updateTime":"2026-10-03T06:12:39Z","value":48211.9}},"updateTime":"2026-10-03T06:12:40Z"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.handleFrame("1FTTEST0000000001", &streamRecord{rec: doc}, frame, func(*Telemetry) {}); err != nil {
			b.Fatal(err)
		}
	}
}

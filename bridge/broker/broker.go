// Package broker runs an embedded MQTT broker (mochi-mqtt) for the demo
// and for tests on machines without mosquitto. Without Users it allows every
// client; it is not meant to face a network.
package broker

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Options configure an embedded broker.
type Options struct {
	Addr  string            // e.g. 127.0.0.1:1883, or 127.0.0.1:0 for any free port
	TLS   *tls.Config       // serve MQTT over TLS
	Users map[string]string // user name → password; empty: anyone may connect
	// Drop, when set, is asked of every publish: true acknowledges it and
	// delivers it to no one, as mosquitto does with a publish its ACL
	// denies (MQTT 3.1.1 has no way to say so). For tests.
	Drop func(clientID, topic string) bool
}

// dropHook acknowledges the publishes Options.Drop names and drops them.
type dropHook struct {
	mochi.HookBase
	drop func(clientID, topic string) bool
}

func (h *dropHook) ID() string { return "drop" }

func (h *dropHook) Provides(b byte) bool { return b == mochi.OnPublish }

func (h *dropHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if h.drop(cl.ID, pk.TopicName) {
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}

// Broker is a running embedded broker.
type Broker struct {
	srv  *mochi.Server
	addr string
}

// Start listens on addr and allows every client.
func Start(addr string) (*Broker, error) { return StartWith(Options{Addr: addr}) }

// StartWith starts a broker with options; it serves until Close.
func StartWith(o Options) (*Broker, error) {
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var err error
	if o.Drop != nil {
		if err := srv.AddHook(&dropHook{drop: o.Drop}, nil); err != nil {
			return nil, err
		}
	}
	switch {
	case len(o.Users) == 0:
		err = srv.AddHook(new(auth.AllowHook), nil)
	default:
		users := auth.Users{}
		for u, p := range o.Users {
			users[u] = auth.UserRule{Username: auth.RString(u), Password: auth.RString(p)}
		}
		err = srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Users: users,
			ACL: auth.ACLRules{{Filters: auth.Filters{"#": auth.ReadWrite}}}}})
	}
	if err != nil {
		return nil, err
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: o.Addr, TLSConfig: o.TLS})
	if err := srv.AddListener(l); err != nil {
		return nil, fmt.Errorf("embedded MQTT broker on %s: %w", o.Addr, err)
	}
	go func() { _ = srv.Serve() }()
	return &Broker{srv: srv, addr: l.Address()}, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker URL for clients (tcp://; use ssl:// with TLS).
func (b *Broker) URL() string { return "tcp://" + b.addr }

// closeWait bounds how long Close waits for the broker to stop.
const closeWait = 3 * time.Second

// Close stops the broker. mochi-mqtt v2.7.9 can deadlock in Close when a
// client connects or leaves at that moment: Clients.GetByListener takes its
// read lock and then Len takes it again, which waits behind a pending
// Delete's write lock (clients.go). So Close gives up after closeWait and
// says so; the broker's connections end with the process.
func (b *Broker) Close() error {
	done := make(chan error, 1)
	go func() { done <- b.srv.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(closeWait):
		return fmt.Errorf("the embedded broker did not stop within %s (a lock of mochi-mqtt's); its connections end with the process", closeWait)
	}
}

// Package brokertest gives tests and the load harness a real broker: the
// one MQTT_TEST_URL names (mosquitto in CI), an embedded one, or a private
// mosquitto of their own. Nothing in the bridge's binaries imports it.
package brokertest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
)

// ForTests returns the broker a test or a measurement should use: the one
// named by MQTT_TEST_URL (mosquitto in CI), else an embedded broker on a
// free local port. stop releases what was started.
func ForTests() (url string, stop func(), err error) {
	if u := os.Getenv("MQTT_TEST_URL"); u != "" {
		return u, func() {}, nil
	}
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	return b.URL(), func() { _ = b.Close() }, nil
}

// ErrNoMosquitto means mosquitto is not installed.
var ErrNoMosquitto = errors.New("mosquitto is not installed")

// StartMosquitto runs a private mosquitto (anonymous, no persistence) on
// addr, with its configuration in dir, and waits until it accepts
// connections. It returns ErrNoMosquitto when the binary is not there.
func StartMosquitto(addr, dir string) (stop func(), err error) {
	return StartMosquittoWith(addr, dir, "")
}

// StartMosquittoWith is StartMosquitto with more configuration lines (an
// acl_file, say).
func StartMosquittoWith(addr, dir, extra string) (stop func(), err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = ""
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
		if bin == "" {
			return nil, ErrNoMosquitto
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "mosquitto-"+port+".conf")
	cfg := fmt.Sprintf("set_tcp_nodelay true\nlistener %s %s\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n%s", port, host, extra)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return stop, nil
		}
	}
	stop()
	return nil, fmt.Errorf("mosquitto did not start listening on %s", addr)
}

// What the harness reads of the bridge process and the machine.

package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/brokertest"
)

func rssMB(pid int) float64 { return rssOf(pid).total }

// rss is a process's resident memory in MiB, whole and in its two parts:
// anonymous (heap, stacks, the runtime's own) and file-backed (the
// binary's pages that were touched).
type rss struct{ total, anon, file float64 }

func rssOf(pid int) rss {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rss{}
	}
	var r rss
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			r.total = float64(kb) / 1024
		case "RssAnon:":
			r.anon = float64(kb) / 1024
		case "RssFile:":
			r.file = float64(kb) / 1024
		}
	}
	return r
}

func (r rss) String() string {
	return fmt.Sprintf("%.1f MB (%.1f anon, %.1f file)", r.total, r.anon, r.file)
}

// trustSimulator makes the simulator's TLS certificate (httptest's, the
// same for every test server) a root for this process, the bridge and the
// floor program: Go reads SSL_CERT_FILE once, at the first TLS handshake.
func trustSimulator(work string) error {
	s := httptest.NewTLSServer(http.NotFoundHandler())
	cert := s.Certificate()
	s.Close()
	path := filepath.Join(work, "simulator-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		return err
	}
	return os.Setenv("SSL_CERT_FILE", path)
}

// cpuTime is the process's user+system CPU time.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// cpuPrecise is the process's time on a CPU in nanoseconds, summed over
// its threads (/proc/PID/task/*/schedstat): /proc/PID/stat counts in
// 10 ms ticks, too coarse for a burst of a few milliseconds. A thread that
// ended takes its time with it (Go's threads rarely end). 0 where the
// kernel has no schedstat.
func cpuPrecise(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum int64
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(data))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += n
		}
	}
	return time.Duration(sum)
}

// metric reads one unlabelled value from the bridge's /metrics (0 if absent).
func metric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			n, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return n
		}
	}
	return 0
}

// saveProfiles stores the bridge's heap profile (after a collection) and
// its goroutines' stacks, for go tool pprof.
func saveProfiles(addr, dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// In this order: the heap profile forces a collection, so the metrics
	// fetched right after it show the live heap.
	for _, p := range [][2]string{{"heap-%d.pb.gz", "/debug/pprof/heap?gc=1"}, {"metrics-%d.txt", "/metrics"}, {"goroutines-%d.txt", "/debug/pprof/goroutine?debug=1"}} {
		name, path := p[0], p[1]
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fetching the %s profile: %v (HTTP %d)", path, err, resp.StatusCode)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf(name, n)), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:18099"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}

// startBroker starts a private mosquitto when installed, else the embedded
// broker.
func startBroker(work string) (string, func(), error) {
	addr := freeAddr()
	stop, err := brokertest.StartMosquitto(addr, work)
	if err == nil {
		return "tcp://" + addr, stop, nil
	}
	if !errors.Is(err, brokertest.ErrNoMosquitto) {
		return "", nil, err
	}
	b, err := broker.Start(addr)
	if err != nil {
		return "", nil, err
	}
	return b.URL(), func() { _ = b.Close() }, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

package bridge_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layers places every package of the module: a package imports only
// packages of a lower layer, so the core (bridge) never reaches up into
// the tools built on it (doctor, the binaries), and the Ford backends and
// the MQTT contract never reach into the bridge. A new package must be
// placed here (the README's "Architecture" section says the same).
var layers = map[string]int{
	"mqttapi": 0, "bridge/floodlog": 0, "bridge/broker": 0,
	"fordapi":             1,
	"fordapi/fordconnect": 2, "fordapi/fordsim": 2, "discovery": 2, "bridge/brokertest": 2,
	"fordapi/both": 3, "bridge/config": 3,
	"bridge/web": 4, "bridge/bridgetest": 4,
	"bridge":            5,
	"bridge/doctor":     6,
	"cmd/fordpass2mqtt": 7, "cmd/fordpass2mqtt-bench": 7,
}

// maxShare is the most of the production code one package may hold.
const maxShare = 0.30

// TestArchitecture: no import runs upward, and no package holds more than
// 30% of the production code (its non-test Go lines).
func TestArchitecture(t *testing.T) {
	root, _ := filepath.Abs("..")
	const module = "github.com/fordpass2mqtt/fordpass2mqtt/"
	lines := map[string]int{}
	total := 0
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n := strings.Count(string(data), "\n")
		lines[pkg] += n
		total += n
		layer, placed := layers[pkg]
		if !placed {
			t.Errorf("package %s has no layer: place it in architecture_test.go's layers", pkg)
			return nil
		}
		f, err := parser.ParseFile(fset, path, data, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			dep, _ := strconv.Unquote(imp.Path.Value)
			dep, ours := strings.CutPrefix(dep, module)
			if !ours {
				continue
			}
			if l, ok := layers[dep]; ok && l >= layer {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s: layer %d reaches up to layer %d", rel, dep, layer, l)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pkgs := make([]string, 0, len(lines))
	for p := range lines {
		pkgs = append(pkgs, p)
	}
	slices.SortFunc(pkgs, func(a, b string) int { return lines[b] - lines[a] })
	for _, p := range pkgs {
		share := float64(lines[p]) / float64(total)
		if share > maxShare {
			t.Errorf("%s holds %.1f%% of the production code (%d of %d lines); at most %.0f%%", p, 100*share, lines[p], total, 100*maxShare)
		}
	}
	t.Logf("largest: %s %d, %s %d of %d lines", pkgs[0], lines[pkgs[0]], pkgs[1], lines[pkgs[1]], total)
}

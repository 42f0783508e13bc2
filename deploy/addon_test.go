package deploy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
)

const addonDir = "homeassistant-addon"

// TestAddonConfigFollowsTheSchema checks the add-on's config.yaml against
// the Supervisor's rules: the required keys, known architectures, every
// option declared in schema with a value of the schema's type, every option
// one of the bridge's variables, and the ingress port the one the binary
// listens on.
func TestAddonConfigFollowsTheSchema(t *testing.T) {
	t.Parallel()
	var c struct {
		Name, Version, Slug, Description, URL, Startup, Boot string
		Arch                                                 []string
		Init                                                 *bool
		Services                                             []string
		Ingress                                              bool
		IngressPort                                          int    `yaml:"ingress_port"`
		PanelIcon                                            string `yaml:"panel_icon"`
		PanelTitle                                           string `yaml:"panel_title"`
		Ports                                                map[string]*int
		Options                                              map[string]any
		Schema                                               map[string]any
	}
	if err := yaml.Unmarshal(read(t, filepath.Join(addonDir, "config.yaml")), &c); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"name": c.Name, "version": c.Version, "slug": c.Slug, "description": c.Description, "url": c.URL} {
		if v == "" {
			t.Errorf("config.yaml lacks %s", k)
		}
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(c.Version) || !regexp.MustCompile(`^[a-z0-9_]+$`).MatchString(c.Slug) {
		t.Errorf("version %q / slug %q", c.Version, c.Slug)
	}
	known := []string{"aarch64", "amd64", "armhf", "armv7", "i386"}
	for _, a := range c.Arch {
		if !slices.Contains(known, a) {
			t.Errorf("arch %q is not one the Supervisor knows", a)
		}
	}
	if !slices.Contains(c.Arch, "amd64") || !slices.Contains(c.Arch, "aarch64") {
		t.Errorf("arch %v must include amd64 and aarch64", c.Arch)
	}
	if c.Init == nil || *c.Init || !slices.Contains(c.Services, "mqtt:need") || !c.Ingress || !strings.HasPrefix(c.PanelIcon, "mdi:") || c.PanelTitle == "" {
		t.Errorf("init %v, services %v, ingress %v, panel %q %q", c.Init, c.Services, c.Ingress, c.PanelIcon, c.PanelTitle)
	}
	// The binary listens on HTTP_ADDR (:8080, as the add-on's image, the
	// Dockerfile's addon stage, sets it): the ingress port must be that.
	df := string(read(t, "../Dockerfile"))
	stage := df[strings.Index(df, " AS addon"):]
	stage = stage[:strings.Index(stage, "\nFROM ")]
	m := regexp.MustCompile(`HTTP_ADDR=:(\d+)`).FindStringSubmatch(stage)
	if m == nil || m[1] != "8080" || c.IngressPort != 8080 {
		t.Errorf("ingress_port %d, the image's HTTP_ADDR %v", c.IngressPort, m)
	}
	if p, ok := c.Ports["8080/tcp"]; !ok || p != nil {
		t.Errorf("the page's port must be declared and closed by default: %v", c.Ports)
	}
	vars := config.EnvVars()
	for k, typ := range c.Schema {
		if !slices.Contains(vars, strings.ToUpper(k)) {
			t.Errorf("schema option %s is not a variable of the bridge", k)
		}
		v, set := c.Options[k]
		optional := strings.HasSuffix(scalar(typ), "?")
		if !set && !optional {
			t.Errorf("schema option %s has no default in options and is not optional", k)
		}
		if set && !matches(v, typ) {
			t.Errorf("option %s = %v does not match its schema %v", k, v, typ)
		}
	}
	for k := range c.Options {
		if _, ok := c.Schema[k]; !ok {
			t.Errorf("option %s is not in schema", k)
		}
	}
	// The region list is the bridge's.
	regions := scalar(c.Schema["ford_region"])
	for _, r := range []string{"usa", "deu", "rest_of_europe", "lincoln_usa", "nor"} {
		if !strings.Contains(regions, "|"+r+"|") && !strings.Contains(regions, "("+r+"|") && !strings.Contains(regions, "|"+r+")") {
			t.Errorf("ford_region's schema lacks %s", r)
		}
	}
}

func scalar(v any) string {
	if l, ok := v.([]any); ok && len(l) == 1 {
		return scalar(l[0])
	}
	s, _ := v.(string)
	return s
}

// matches checks a value against an add-on schema type (the ones used here).
func matches(v any, typ any) bool {
	if list, ok := typ.([]any); ok {
		items, ok := v.([]any)
		if !ok || len(list) != 1 {
			return false
		}
		for _, it := range items {
			if !matches(it, list[0]) {
				return false
			}
		}
		return true
	}
	s := strings.TrimSuffix(scalar(typ), "?")
	switch {
	case s == "str" || s == "password":
		_, ok := v.(string)
		return ok
	case s == "bool":
		_, ok := v.(bool)
		return ok
	case strings.HasPrefix(s, "int"):
		n, ok := v.(int)
		if !ok {
			return false
		}
		var lo, hi int
		if _, err := fmt.Sscanf(s, "int(%d,%d)", &lo, &hi); err == nil {
			return n >= lo && n <= hi
		}
		return s == "int"
	case strings.HasPrefix(s, "list("):
		str, ok := v.(string)
		return ok && slices.Contains(strings.Split(strings.TrimSuffix(strings.TrimPrefix(s, "list("), ")"), "|"), str)
	case strings.HasPrefix(s, "match("):
		str, ok := v.(string)
		return ok && regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(s, "match("), ")")).MatchString(str)
	}
	return false
}

// TestAddonRepositoryIsFound: the Supervisor reads repository.yaml at the
// root and takes every config.{json,yaml,yml} outside hidden and rootfs
// folders for an add-on; this repository must hold exactly the one.
func TestAddonRepositoryIsFound(t *testing.T) {
	t.Parallel()
	var repo struct{ Name, URL, Maintainer string }
	if err := yaml.Unmarshal(read(t, "../repository.yaml"), &repo); err != nil || repo.Name == "" || repo.URL == "" {
		t.Fatalf("repository.yaml: %+v %v", repo, err)
	}
	var found []string
	_ = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && path != ".." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "rootfs") {
			return filepath.SkipDir
		}
		if n := d.Name(); n == "config.json" || n == "config.yaml" || n == "config.yml" {
			found = append(found, filepath.ToSlash(path))
		}
		return nil
	})
	if !slices.Equal(found, []string{"../deploy/" + addonDir + "/config.yaml"}) {
		t.Fatalf("the Supervisor would take these for add-ons: %v", found)
	}
	for _, f := range []string{"DOCS.md", "CHANGELOG.md", "translations/en.yaml"} {
		if len(read(t, filepath.Join(addonDir, f))) == 0 {
			t.Errorf("%s is empty", f)
		}
	}
	for f, size := range map[string][2]uint32{"icon.png": {128, 128}, "logo.png": {250, 100}} {
		data := read(t, filepath.Join(addonDir, f))
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || len(data) < 24 {
			t.Fatalf("%s is not a PNG", f)
		}
		if w, h := binary.BigEndian.Uint32(data[16:20]), binary.BigEndian.Uint32(data[20:24]); [2]uint32{w, h} != size {
			t.Errorf("%s is %dx%d, want %dx%d", f, w, h, size[0], size[1])
		}
	}
	// The Supervisor pulls the prebuilt image (config.yaml's image): the
	// folder holds no build files that would suggest otherwise.
	for _, f := range []string{"Dockerfile", "build.yaml", "build.json"} {
		if _, err := os.Stat(filepath.Join(addonDir, f)); err == nil {
			t.Errorf("%s: the add-on is a prebuilt image; a local build file would never be used", f)
		}
	}
}

// TestAddonAndEnvExampleNameEveryCommand: the add-on's default options and
// env.example allow every command (all, which takes in a command a later
// version adds), and the add-on's schema for commands_allowed offers all
// and exactly the commands of the bridge's command table, so a new command
// reaches add-on users and their schema accepts it.
func TestAddonAndEnvExampleNameEveryCommand(t *testing.T) {
	want := bridge.Commands()
	data, err := os.ReadFile(filepath.Join(addonDir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Options struct {
			CommandsAllowed []string `yaml:"commands_allowed"`
		} `yaml:"options"`
		Schema struct {
			CommandsAllowed []string `yaml:"commands_allowed"`
		} `yaml:"schema"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Options.CommandsAllowed, []string{config.AllCommands}) {
		t.Errorf("the add-on's default commands_allowed is %v, not [all]", cfg.Options.CommandsAllowed)
	}
	m := regexp.MustCompile(`^list\((.*)\)$`).FindStringSubmatch(strings.Join(cfg.Schema.CommandsAllowed, ""))
	var offered []string
	if m != nil {
		offered = strings.Split(m[1], "|")
	}
	if !slices.Equal(sorted(offered), sorted(append([]string{config.AllCommands}, want...))) {
		t.Errorf("the add-on's schema for commands_allowed is %v; the command table has %v", cfg.Schema.CommandsAllowed, want)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `COMMANDS_ALLOWED` \\|.*$").Find(readme)
	for _, name := range want {
		if !strings.Contains(string(row), "`"+name+"`") {
			t.Errorf("the README's COMMANDS_ALLOWED row lacks %s: %s", name, row)
		}
	}
	env, err := os.ReadFile("env.example")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^#? ?COMMANDS_ALLOWED=(.*)$`).FindSubmatch(env)
	if line == nil || string(line[1]) != config.Default("COMMANDS_ALLOWED") {
		t.Errorf("env.example's COMMANDS_ALLOWED is %q; the default is %s", line, config.Default("COMMANDS_ALLOWED"))
	}
}

func sorted(l []string) []string {
	l = slices.Clone(l)
	slices.Sort(l)
	return l
}

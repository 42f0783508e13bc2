package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// lintSchemas is where the add-on linter's schemas are read in place (see
// its SOURCES.md); CI has the folder beside the checkout.
const lintSchemas = "../../shared/reference/addon-linter"

// TestAddonPassesTheLinter validates config.yaml against the add-on
// linter's JSON schema (frenck/action-addon-linter), with the rules the
// linter adds to it: no key set to its schema default, no architecture Home
// Assistant dropped (armhf, armv7, i386), no webui beside ingress, no
// watchdog, codenotary or auto_uart.
func TestAddonPassesTheLinter(t *testing.T) {
	t.Parallel()
	schemaPath := filepath.Join(lintSchemas, "addon-config.schema.json")
	raw, err := os.ReadFile(schemaPath)
	if os.IsNotExist(err) {
		t.Skipf("the add-on linter's schemas are not beside the checkout (%s); CI has them", lintSchemas)
	}
	if err != nil {
		t.Fatal(err)
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("addon-config.schema.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("addon-config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	config := yamlAsJSON(t, filepath.Join(addonDir, "config.yaml"))
	if err := sch.Validate(config); err != nil {
		t.Fatalf("config.yaml fails the add-on linter's schema:\n%v", err)
	}

	// The default-value rule.
	var props struct {
		Properties map[string]struct {
			Default any `json:"default"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &props); err != nil {
		t.Fatal(err)
	}
	cfg := config.(map[string]any)
	for k, v := range cfg {
		if p, ok := props.Properties[k]; ok && p.Default != nil && reflect.DeepEqual(normalize(v), normalize(p.Default)) {
			t.Errorf("config.yaml sets %s to its default (%v); the linter refuses that", k, v)
		}
	}
	for _, a := range cfg["arch"].([]any) {
		if slices.Contains([]any{"armhf", "armv7", "i386"}, a) {
			t.Errorf("arch %s: Home Assistant dropped it in 2025.12", a)
		}
	}
	for _, k := range []string{"watchdog", "codenotary", "auto_uart"} {
		if _, ok := cfg[k]; ok {
			t.Errorf("config.yaml sets %s, which the linter refuses", k)
		}
	}
	if _, ok := cfg["webui"]; ok && cfg["ingress"] == true {
		t.Error("webui beside ingress")
	}
	// The Supervisor's own rules the schema does not hold: an image per
	// architecture, a minimum Home Assistant version.
	if img, _ := cfg["image"].(string); !strings.Contains(img, "{arch}") || !strings.HasPrefix(img, "ghcr.io/") {
		t.Errorf("image %q: a prebuilt image per architecture ({arch}) is pulled by the Supervisor", img)
	}
	if v, _ := cfg["homeassistant"].(string); v == "" {
		t.Error("no homeassistant minimum version")
	}
}

// TestAddonOptionsAreTranslated: every option of the schema has an English
// name and description, and the translations name no option that does not
// exist.
func TestAddonOptionsAreTranslated(t *testing.T) {
	t.Parallel()
	var c struct {
		Schema map[string]any `yaml:"schema"`
		Ports  map[string]any `yaml:"ports"`
	}
	if err := yaml.Unmarshal(read(t, filepath.Join(addonDir, "config.yaml")), &c); err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Configuration map[string]struct{ Name, Description string } `yaml:"configuration"`
		Network       map[string]string                             `yaml:"network"`
	}
	if err := yaml.Unmarshal(read(t, filepath.Join(addonDir, "translations", "en.yaml")), &tr); err != nil {
		t.Fatal(err)
	}
	for k := range c.Schema {
		if e, ok := tr.Configuration[k]; !ok || e.Name == "" || e.Description == "" {
			t.Errorf("option %s has no English name and description", k)
		}
	}
	for k := range tr.Configuration {
		if _, ok := c.Schema[k]; !ok {
			t.Errorf("the translation names %s, which is not an option", k)
		}
	}
	for port := range c.Ports {
		if tr.Network[port] == "" {
			t.Errorf("port %s has no description", port)
		}
	}
	docs := string(read(t, filepath.Join(addonDir, "DOCS.md")))
	for k := range c.Schema {
		if !strings.Contains(docs, "`"+k+"`") {
			t.Errorf("DOCS.md does not mention option %s", k)
		}
	}
}

// yamlAsJSON reads a YAML file as the JSON values a schema validates.
func yamlAsJSON(t *testing.T, path string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(read(t, path), &v); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// normalize makes numbers of either decoding comparable.
func normalize(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}

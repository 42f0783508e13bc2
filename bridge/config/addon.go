package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Home Assistant add-on mode. The Supervisor starts an add-on with
// SUPERVISOR_TOKEN set; then the settings the user made in the add-on's
// Configuration tab are in STATE_DIR/options.json (each option named as its
// environment variable in lower case), the broker comes from the Supervisor's
// MQTT service, and the sign-in page is served through Home Assistant's
// ingress panel.

// IngressProxy is the address Home Assistant's ingress proxy connects from.
const IngressProxy = "172.30.32.2"

// addonDefaultStateDir is where the Supervisor mounts an add-on's data.
const addonDefaultStateDir = "/data"

// inAddon reports whether the Supervisor started this process.
func inAddon() bool { return os.Getenv("SUPERVISOR_TOKEN") != "" }

// supervisorURL is the Supervisor's API.
func supervisorURL() string {
	if u := strings.TrimRight(os.Getenv("SUPERVISOR_URL"), "/"); u != "" {
		return u
	}
	return "http://supervisor"
}

// applyAddonOptions fills the settings that the environment leaves unset
// from options.json. An environment variable still wins. A bad option is a
// configuration error like a bad variable.
func (e *env) applyAddonOptions() error {
	dir := e.StateDir
	if _, set := os.LookupEnv("STATE_DIR"); !set {
		dir = addonDefaultStateDir
		e.StateDir = dir
	}
	path := filepath.Join(dir, "options.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no options yet: the defaults and the environment
	}
	if err != nil {
		return NewError("options.json", err)
	}
	var opts map[string]any
	if err := json.Unmarshal(data, &opts); err != nil {
		return NewError("options.json", fmt.Errorf("%s is not a JSON object: %w", path, err))
	}
	fields := map[string]int{}
	t := reflect.TypeOf(*e)
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("envconfig"); name != "" {
			fields[strings.ToLower(name)] = i
		}
	}
	var errs []error
	v := reflect.ValueOf(e).Elem()
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		i, ok := fields[k]
		if !ok {
			errs = append(errs, NewError("option "+k, errors.New("is not a setting of fordpass2mqtt (the add-on's options are its environment variables in lower case)")))
			continue
		}
		if _, set := os.LookupEnv(strings.ToUpper(k)); set {
			continue // the environment wins
		}
		if k == "ford_accounts" {
			if err := e.addonAccounts(opts[k]); err != nil {
				errs = append(errs, NewError("option "+k, err))
			}
			continue
		}
		s, err := optionString(opts[k])
		if err != nil {
			errs = append(errs, NewError("option "+k, err))
			continue
		}
		v.Field(i).SetString(s)
		e.fromOptions = append(e.fromOptions, strings.ToUpper(k))
	}
	return errors.Join(errs...)
}

// addonAccounts takes the add-on's ford_accounts option: a list of
// {"name", "region", "vins"} (region and vins optional; vins
// comma-separated), as FORD_ACCOUNTS with its FORD_REGION_<NAME> and
// FORD_VINS_<NAME> (the environment still wins for each).
func (e *env) addonAccounts(v any) error {
	list, ok := v.([]any)
	if !ok && v != nil {
		return errors.New("is a list of accounts, each {name, region, vins}")
	}
	var names []string
	for i, item := range list {
		a, ok := item.(map[string]any)
		if !ok {
			return fmt.Errorf("item %d is not an account {name, region, vins}", i+1)
		}
		var name, region, vins string
		for key, val := range a {
			s, err := optionString(val)
			if err != nil {
				return fmt.Errorf("item %d, %s: %w", i+1, key, err)
			}
			switch key {
			case "name":
				name = s
			case "region":
				region = s
			case "vins":
				vins = s
			default:
				return fmt.Errorf("item %d: %q is not name, region or vins", i+1, key)
			}
		}
		names = append(names, name)
		up := strings.ToUpper(strings.TrimSpace(name))
		for k, val := range map[string]string{"FORD_REGION_" + up: region, "FORD_VINS_" + up: vins} {
			if _, set := os.LookupEnv(k); !set && val != "" {
				e.setPerAccount(k, val)
			}
		}
	}
	e.FordAccounts = strings.Join(names, ",")
	e.fromOptions = append(e.fromOptions, "FORD_ACCOUNTS")
	return nil
}

// optionString turns an option's JSON value into the variable's text.
func optionString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, item := range x {
			s, err := optionString(item)
			if err != nil {
				return "", err
			}
			if _, isList := item.([]any); isList {
				return "", errors.New("is a list of lists")
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("is a JSON %T; options are text, numbers, true/false or lists", v)
}

// mqttService is the Supervisor's answer for its MQTT service.
type mqttService struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	SSL      bool   `json:"ssl"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// supervisorGet calls the Supervisor's API and decodes its data.
func supervisorGet(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, supervisorURL()+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("SUPERVISOR_TOKEN"))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("asking the Supervisor for %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var answer struct {
		Result  string          `json:"result"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &answer)
	if resp.StatusCode != http.StatusOK || answer.Result != "ok" {
		msg := answer.Message
		if msg == "" {
			msg = "HTTP " + strconv.Itoa(resp.StatusCode)
		}
		return &supervisorError{Path: path, Status: resp.StatusCode, Message: msg}
	}
	return json.Unmarshal(answer.Data, out)
}

type supervisorError struct {
	Path    string
	Status  int
	Message string
}

func (e *supervisorError) Error() string {
	return fmt.Sprintf("the Supervisor answered %s with %d: %s", e.Path, e.Status, e.Message)
}

// addonBroker fills MQTT_URL (and the credentials, unless set) from the
// Supervisor's MQTT service.
func (e *env) addonBroker(ctx context.Context) error {
	if e.userSet("MQTT_URL") {
		return nil // the user named a broker
	}
	var svc mqttService
	if err := supervisorGet(ctx, "/services/mqtt", &svc); err != nil {
		var se *supervisorError
		if errors.As(err, &se) && se.Status < 500 {
			return NewError("MQTT_URL", fmt.Errorf("Home Assistant has no MQTT broker to offer (%v): install and start the Mosquitto broker add-on (Settings → Add-ons → Add-on store → Mosquitto broker), or set mqtt_url in this add-on's options", err))
		}
		return NewError("MQTT_URL", fmt.Errorf("cannot ask the Supervisor for the MQTT broker: %w", err))
	}
	if svc.Host == "" || svc.Port == 0 {
		return NewError("MQTT_URL", errors.New("the Supervisor's MQTT service names no host and port; start the Mosquitto broker add-on"))
	}
	scheme := "tcp"
	if svc.SSL {
		scheme = "ssl"
	}
	e.MQTTURL = scheme + "://" + net.JoinHostPort(svc.Host, strconv.Itoa(svc.Port))
	if !e.userSet("MQTT_USERNAME") {
		e.MQTTUsername, e.MQTTPassword = svc.Username, svc.Password
	}
	return nil
}

// userSet reports whether the user set a variable, in the environment or in
// the add-on's options.
func (e *env) userSet(name string) bool {
	_, set := os.LookupEnv(name)
	return set || slices.Contains(e.fromOptions, name)
}

// addonSelf is what the Supervisor says of this add-on.
type addonSelf struct {
	Slug    string          `json:"slug"`
	Ingress bool            `json:"ingress"`
	Network map[string]*int `json:"network"` // container port → host port (nil: not opened)
}

// addonSelfInfo asks the Supervisor about this add-on; a failure leaves the
// defaults (ingress only, no Visit link).
func addonSelfInfo(ctx context.Context) addonSelf {
	var self addonSelf
	_ = supervisorGet(ctx, "/addons/self/info", &self)
	return self
}

// ingressURL is Home Assistant's link to the add-on's panel, for the
// device page's Visit link.
func ingressURL(slug string) string {
	return "homeassistant://hassio/ingress/" + url.PathEscape(slug)
}

package bridge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Several Ford accounts in one bridge (FORD_ACCOUNTS): each account has its
// own backend, sign-in, call budget, STATE_DIR/<name>/ and P/auth/<name>/
// topics, and its own cars; the broker connection, the HTTP side, the
// device shapes and P/bridge/… are the bridge's. P/auth/state says the
// worst of the accounts' states.

// carAccount is the account that bridges vin, with its car (nil, nil when
// none does).
func (b *Bridge) carAccount(vin string) (*fordAccount, *vehicle) {
	for _, a := range b.accounts {
		if v := a.fleet.vehicle(vin); v != nil {
			return a, v
		}
	}
	return nil, nil
}

// bridgedElsewhere names the account other than a that bridges vin ("" if
// none): a car on two accounts belongs to the first that took it.
func (b *Bridge) bridgedElsewhere(a *fordAccount, vin string) string {
	for _, o := range b.accounts {
		if o != a && slices.Contains(o.fleet.bridgedVINs(), vin) {
			return o.name
		}
	}
	return ""
}

// cars are every account's bridged cars.
func (b *Bridge) cars() []*vehicle {
	var out []*vehicle
	for _, a := range b.accounts {
		out = append(out, a.fleet.cars()...)
	}
	return out
}

// bridgedVINs are every account's bridged cars' VINs, account by account.
func (b *Bridge) bridgedVINs() []string {
	var out []string
	for _, a := range b.accounts {
		out = append(out, a.fleet.bridgedVINs()...)
	}
	return out
}

// staleVINs are the cars whose device configs must be cleared: no longer
// bridged by their account, nor by another.
func (b *Bridge) staleVINs() []string {
	bridged := b.bridgedVINs()
	var out []string
	for _, a := range b.accounts {
		for _, vin := range a.fleet.staleVINs() {
			if !slices.Contains(bridged, vin) {
				out = append(out, vin)
			}
		}
	}
	return out
}

// darkCars are every account's offline cars, sorted.
func (b *Bridge) darkCars() []string {
	var out []string
	for _, a := range b.accounts {
		out = append(out, a.fleet.darkCars()...)
	}
	slices.Sort(out)
	return out
}

// codeTopics are the accounts' P/auth/…/code/set topics.
func (b *Bridge) codeTopics() []string {
	out := make([]string, 0, len(b.accounts))
	for _, a := range b.accounts {
		out = append(out, a.t.CodeSet())
	}
	return out
}

// codeAccount is the account whose P/auth/…/code/set topic is topic (nil
// for any other topic).
func (b *Bridge) codeAccount(topic string) *fordAccount {
	for _, a := range b.accounts {
		if a.t.CodeSet() == topic {
			return a
		}
	}
	return nil
}

// account is the account named name ("" is the first: the only one without
// FORD_ACCOUNTS); nil when none has that name.
func (b *Bridge) account(name string) *fordAccount {
	if name == "" {
		return b.accounts[0]
	}
	for _, a := range b.accounts {
		if a.name == name {
			return a
		}
	}
	return nil
}

// worst is the accounts' auth state that needs the most (a sign-in needed
// first), with each account's state by name when there are several.
func (b *Bridge) worst() AuthInfo {
	info := b.accounts[0].auth.info()
	if !b.named() {
		return info
	}
	states := map[string]string{}
	for _, a := range b.accounts {
		ai := a.auth.info()
		states[a.name] = ai.State
		if stateRank[ai.State] > stateRank[info.State] {
			info = ai
		}
	}
	info.Accounts = states
	info.Reason = info.Account + ": " + info.Reason
	return info
}

// authChanged runs after an account published its auth state: the metric
// and, with several accounts, P/auth/state, …/detail and …/login_url say
// the worst of them.
func (b *Bridge) authChanged() {
	b.authPubMu.Lock()
	defer b.authPubMu.Unlock()
	info := b.worst()
	b.m.setAuthState(info.State)
	if !b.named() {
		return
	}
	b.pub.publishState(b.t.AuthState(), info.State)
	b.pub.publishState(b.t.AuthDetail(), authJSON(info))
	b.pub.publishState(b.t.LoginURL(), info.LoginURL)
}

// accountFiles are the files of a sign-in that move into the first
// account's folder when a single-account STATE_DIR takes FORD_ACCOUNTS:
// fordapi's (token, pending sign-in, call budget, sign-in throttle, what
// Ford's protocol is) and the vehicle cache.
var accountFiles = append(fordapi.SignInFiles(), vehicleCacheFile)

// UpgradeStateDir moves a single-account STATE_DIR's sign-in into the first
// account of FORD_ACCOUNTS (STATE_DIR/<name>/) when that account has none
// yet, so naming the accounts needs no new sign-in. It runs before the
// accounts' clients read their files. Nothing moves without FORD_ACCOUNTS,
// or once the first account has a token.
func UpgradeStateDir(cfg config.Config, log *zap.Logger) error {
	if len(cfg.Accounts) == 0 || cfg.Accounts[0].Name == "" {
		return nil
	}
	first := cfg.ForAccount(cfg.Accounts[0]).StateDir
	if _, err := os.Stat(filepath.Join(cfg.StateDir, fordapi.TokenFileName)); err != nil {
		return nil // nothing signed in before the accounts were named
	}
	if err := fordapi.PrepareStateDir(first); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(first, fordapi.TokenFileName)); err == nil {
		log.Warn("STATE_DIR holds a sign-in from before FORD_ACCOUNTS, and the first account has its own: the older one is left where it is",
			zap.String("account", cfg.Accounts[0].Name))
		return nil
	}
	var moved []string
	for _, name := range accountFiles {
		from, to := filepath.Join(cfg.StateDir, name), filepath.Join(first, name)
		err := os.Rename(from, to)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("moving the sign-in from before FORD_ACCOUNTS into %s: %w", first, err)
		default:
			moved = append(moved, name)
		}
	}
	log.Info("the sign-in from before FORD_ACCOUNTS now belongs to the first account; no new sign-in is needed for it",
		zap.String("account", cfg.Accounts[0].Name), zap.Strings("files", moved))
	return nil
}

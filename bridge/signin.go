package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

func (a *authSide) onCode(msg mqtt.Message) {
	payload := string(msg.Payload())
	if strings.TrimSpace(payload) == "" {
		return // the broker clearing a retained code, or our own clearing
	}
	// Consumed once: clear it, so a code published with the retain flag is
	// not replayed at the next connect. The broker only marks a message as
	// retained when it predates the subscription, so clear in every case.
	a.pub.client.Publish(msg.Topic(), 1, true, []byte{})
	if msg.Retained() {
		// Stored by the broker before the bridge subscribed: minutes or
		// days old, most likely used already. Like a retained command, it
		// is refused without a Ford call.
		a.log.Warn("a sign-in code retained on the broker was ignored and cleared; publish codes without the retain flag")
		a.gate.setLastSignIn(SignInResult{At: a.now().UTC().Truncate(time.Second),
			Error: "a code retained on " + msg.Topic() + " was ignored: it was stored before the bridge connected, and codes are single-use and expire within minutes; publish the new one without the retain flag"})
		a.publishAuth()
		return
	}
	// One at a time, in the sign-in loop: a flood of codes costs at most
	// what the sign-in throttle lets through, and the latest code wins.
	a.deferSignIn(payload, time.Time{}, true)
}

// SignIn signs in with a pasted redirect URL or code, from whichever door
// it came (MQTT, the sign-in page). A bad code leaves the state as it was
// and says why in P/auth/detail.
func (b *Bridge) SignIn(ctx context.Context, pasted string) error {
	return b.accounts[0].auth.signIn(ctx, pasted, true)
}

// SignInAccount is SignIn for the account named account (FORD_ACCOUNTS;
// "" is the first).
func (b *Bridge) SignInAccount(ctx context.Context, account, pasted string) error {
	a := b.account(account)
	if a == nil {
		return errNoAccount(account)
	}
	return a.auth.signIn(ctx, pasted, true)
}

// errNoAccount is the answer for an account name FORD_ACCOUNTS lacks.
func errNoAccount(name string) error {
	return fmt.Errorf("no account %q in FORD_ACCOUNTS", name)
}

// signIn is SignIn; fresh says pasted has just arrived, so it is newer than
// any code waiting for the throttle (false for a code the sign-in loop took
// from the waiting slot).
func (a *authSide) signIn(ctx context.Context, pasted string, fresh bool) error {
	a.signInMu.Lock()
	defer a.signInMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := a.ford.SignIn(ctx, pasted)
	res := SignInResult{At: a.now().UTC().Truncate(time.Second), OK: err == nil}
	var te *fordapi.SignInThrottleError
	if errors.As(err, &te) {
		// Not a verdict on the code: it waits, and only the latest code
		// pasted meanwhile is tried when the throttle opens.
		a.deferSignIn(pasted, te.RetryAt, fresh)
		res.Error = err.Error() + "; the latest code pasted until then will be tried"
		a.gate.setLastSignIn(res)
		a.publishAuth()
		return err
	}
	if err != nil {
		res.Error = err.Error()
		a.gate.setLastSignIn(res)
		if info := a.gate.get(); info.State == StateReauthRequired {
			a.setAuth(StateReauthRequired, "the pasted code did not work: "+err.Error(), time.Time{})
		}
		a.publishAuth()
		return err
	}
	a.gate.setLastSignIn(res)
	a.pending.mu.Lock()
	a.pending.code = "" // a code still waiting for the throttle is moot now
	a.pending.mu.Unlock()
	a.signedIn() // before the gate opens, so the cars' next calls count as the first after it
	a.setAuth(StateOK, "signed in", time.Time{})
	a.log.Info("signed in")
	return nil
}

// pendingSignIn is the latest code waiting to be tried: codes from MQTT
// wait here for the sign-in loop, and so does a code from any door that the
// sign-in throttle turned away. A newer code replaces an older one.
type pendingSignIn struct {
	mu   sync.Mutex
	code string
	at   time.Time // not before
	wake chan struct{}
}

// deferSignIn queues pasted for the sign-in loop, to be tried at at or
// later. newest says pasted is newer than any code waiting; a code the loop
// took back from the slot only fills it if it is still empty.
func (a *authSide) deferSignIn(pasted string, at time.Time, newest bool) {
	a.pending.mu.Lock()
	if newest || a.pending.code == "" {
		a.pending.code = pasted
	}
	if at.After(a.pending.at) {
		a.pending.at = at
	}
	a.pending.mu.Unlock()
	select {
	case a.pending.wake <- struct{}{}:
	default:
	}
}

// signInLoop tries waiting codes one at a time, the latest first, when the
// sign-in throttle allows.
func (a *authSide) signInLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.pending.wake:
		}
		for {
			a.pending.mu.Lock()
			at := a.pending.at
			a.pending.mu.Unlock()
			if sleep(ctx, at.Sub(a.now())) != nil {
				return
			}
			a.pending.mu.Lock()
			code := a.pending.code
			a.pending.code = ""
			a.pending.mu.Unlock()
			if code == "" {
				break
			}
			err := a.signIn(ctx, code, false)
			if err != nil && !errors.As(err, new(*fordapi.SignInThrottleError)) && ctx.Err() == nil {
				a.log.Warn("sign-in from MQTT failed", zap.Error(err))
			}
		}
	}
}

// tokenWatch notices a sign-in made by another process (fordpass2mqtt
// login writing the token file) while no Ford call may be made, and a token
// that could not be saved: it says so in P/auth/detail at once, and saves
// it again with backoff until it succeeds.
func (a *authSide) tokenWatch(ctx context.Context) {
	t := time.NewTicker(a.opts.TokenCheck)
	defer t.Stop()
	saveBo := &backoff{min: a.opts.TokenCheck, max: 5 * time.Minute}
	var nextSave time.Time
	var repaired string // what the last token file check found and mended
	var repairedAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if h, ok := a.ford.(fordapi.RefusalRetrier); ok {
			if _, healed := h.RetryRefused(ctx); healed {
				a.signedIn()
				a.setAuth(StateOK, "signed in again by itself: Ford's refusal of the saved sign-in was temporary", time.Time{})
				a.publishAuth()
			}
		}
		if tc, ok := a.ford.(fordapi.TokenFileChecker); ok {
			if found := tc.CheckTokenFile(); found != "" {
				repaired, repairedAt = found, a.now()
			}
		}
		st := a.ford.Status()
		if st.Unsaved != "" && !a.now().Before(nextSave) {
			if err := a.ford.SaveToken(); err == nil {
				st.Unsaved = ""
			} else {
				nextSave = a.now().Add(saveBo.next())
			}
		}
		warning := ""
		switch {
		case st.Unsaved != "":
			warning = "the new token could not be saved (" + st.Unsaved + "): a restart now needs a new sign-in; the bridge keeps trying to save it"
		case repaired != "" && a.now().Sub(repairedAt) < time.Hour:
			// Said for an hour: something else writes into STATE_DIR.
			warning = repaired
		}
		if st.Unsaved == "" {
			saveBo.reset()
			nextSave = time.Time{}
		}
		if was := a.gate.get().Warning; a.gate.setWarning(warning) {
			switch {
			case st.Unsaved != "":
				a.log.Error("the token in use is not saved; a restart now needs a new sign-in", zap.String("why", st.Unsaved))
			case warning == "" && strings.HasPrefix(was, "the new token could not be saved"):
				a.log.Info("the token warning is cleared: the token file holds the token in use")
			}
			a.publishAuth()
		}
		if a.gate.get().State != StateReauthRequired {
			continue
		}
		if st.SignedIn {
			a.signedIn()
			a.setAuth(StateOK, "signed in (token saved by fordpass2mqtt login)", time.Time{})
		}
	}
}

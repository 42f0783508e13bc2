package bridge

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

func (b *Bridge) onCode(msg mqtt.Message) {
	payload := string(msg.Payload())
	if strings.TrimSpace(payload) == "" {
		return // the broker clearing a retained code, or our own clearing
	}
	// Consumed once: clear it, so a code published with the retain flag is
	// not replayed at the next connect. The broker only marks a message as
	// retained when it predates the subscription, so clear in every case.
	b.client.Publish(msg.Topic(), 1, true, []byte{})
	if msg.Retained() {
		// Stored by the broker before the bridge subscribed: minutes or
		// days old, most likely used already. Like a retained command, it
		// is refused without a Ford call.
		b.log.Warn("a sign-in code retained on the broker was ignored and cleared; publish codes without the retain flag")
		b.gate.setLastSignIn(SignInResult{At: b.now().UTC().Truncate(time.Second),
			Error: "a code retained on " + msg.Topic() + " was ignored: it was stored before the bridge connected, and codes are single-use and expire within minutes; publish the new one without the retain flag"})
		b.publishAuth()
		return
	}
	// One at a time, in the sign-in loop: a flood of codes costs at most
	// what the sign-in throttle lets through, and the latest code wins.
	b.deferSignIn(payload, time.Time{}, true)
}

// SignIn signs in with a pasted redirect URL or code, from whichever door
// it came (MQTT, the sign-in page). A bad code leaves the state as it was
// and says why in P/auth/detail.
func (b *Bridge) SignIn(ctx context.Context, pasted string) error {
	return b.signIn(ctx, pasted, true)
}

// signIn is SignIn; fresh says pasted has just arrived, so it is newer than
// any code waiting for the throttle (false for a code the sign-in loop took
// from the waiting slot).
func (b *Bridge) signIn(ctx context.Context, pasted string, fresh bool) error {
	b.signInMu.Lock()
	defer b.signInMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := b.ford.SignIn(ctx, pasted)
	res := SignInResult{At: b.now().UTC().Truncate(time.Second), OK: err == nil}
	var te *fordapi.SignInThrottleError
	if errors.As(err, &te) {
		// Not a verdict on the code: it waits, and only the latest code
		// pasted meanwhile is tried when the throttle opens.
		b.deferSignIn(pasted, te.RetryAt, fresh)
		res.Error = err.Error() + "; the latest code pasted until then will be tried"
		b.gate.setLastSignIn(res)
		b.publishAuth()
		return err
	}
	if err != nil {
		res.Error = err.Error()
		b.gate.setLastSignIn(res)
		if info := b.gate.get(); info.State == StateReauthRequired {
			b.setAuth(StateReauthRequired, "the pasted code did not work: "+err.Error(), time.Time{})
		}
		b.publishAuth()
		return err
	}
	b.gate.setLastSignIn(res)
	b.pending.mu.Lock()
	b.pending.code = "" // a code still waiting for the throttle is moot now
	b.pending.mu.Unlock()
	b.snapshotDue.Store(true)
	b.setAuth(StateOK, "signed in", time.Time{})
	b.log.Info("signed in")
	select {
	case b.listWake <- struct{}{}:
	default:
	}
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
func (b *Bridge) deferSignIn(pasted string, at time.Time, newest bool) {
	b.pending.mu.Lock()
	if newest || b.pending.code == "" {
		b.pending.code = pasted
	}
	if at.After(b.pending.at) {
		b.pending.at = at
	}
	b.pending.mu.Unlock()
	select {
	case b.pending.wake <- struct{}{}:
	default:
	}
}

// signInLoop tries waiting codes one at a time, the latest first, when the
// sign-in throttle allows.
func (b *Bridge) signInLoop(ctx context.Context) {
	defer b.workers.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.pending.wake:
		}
		for {
			b.pending.mu.Lock()
			at := b.pending.at
			b.pending.mu.Unlock()
			if sleep(ctx, at.Sub(b.now())) != nil {
				return
			}
			b.pending.mu.Lock()
			code := b.pending.code
			b.pending.code = ""
			b.pending.mu.Unlock()
			if code == "" {
				break
			}
			err := b.signIn(ctx, code, false)
			if err != nil && !errors.As(err, new(*fordapi.SignInThrottleError)) && ctx.Err() == nil {
				b.log.Warn("sign-in from MQTT failed", zap.Error(err))
			}
		}
	}
}

// tokenWatch notices a sign-in made by another process (fordpass2mqtt
// login writing the token file) while no Ford call may be made, and a token
// that could not be saved: it says so in P/auth/detail at once, and saves
// it again with backoff until it succeeds.
func (b *Bridge) tokenWatch(ctx context.Context) {
	defer b.workers.Done()
	t := time.NewTicker(b.opts.TokenCheck)
	defer t.Stop()
	saveBo := &backoff{min: b.opts.TokenCheck, max: 5 * time.Minute}
	var nextSave time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := b.ford.Status()
		if st.Unsaved != "" && !b.now().Before(nextSave) {
			if err := b.ford.SaveToken(); err == nil {
				st.Unsaved = ""
			} else {
				nextSave = b.now().Add(saveBo.next())
			}
		}
		warning := ""
		if st.Unsaved != "" {
			warning = "the new token could not be saved (" + st.Unsaved + "): a restart now needs a new sign-in; the bridge keeps trying to save it"
		} else {
			saveBo.reset()
			nextSave = time.Time{}
		}
		if b.gate.setWarning(warning) {
			if warning != "" {
				b.log.Error("the token in use is not saved; a restart now needs a new sign-in", zap.String("why", st.Unsaved))
			} else {
				b.log.Info("the token warning is cleared: the token file holds the token in use")
			}
			b.publishAuth()
		}
		if b.gate.get().State != StateReauthRequired {
			continue
		}
		if st.SignedIn {
			b.snapshotDue.Store(true)
			b.setAuth(StateOK, "signed in (token saved by fordpass2mqtt login)", time.Time{})
			select {
			case b.listWake <- struct{}{}:
			default:
			}
		}
	}
}

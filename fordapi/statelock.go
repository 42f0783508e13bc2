package fordapi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the lock one running bridge holds on its STATE_DIR.
const lockFileName = "bridge.lock"

// StateLock is the lock a running bridge holds on its STATE_DIR: two
// processes on one directory would share the token file and the call
// budget and race each other's refreshes (Ford rotates the refresh token,
// so one of them would lose the sign-in).
type StateLock struct{ f *os.File }

// ErrStateDirLocked: another process holds the directory.
var ErrStateDirLocked = errors.New("another fordpass2mqtt is running on this state directory")

// LockStateDir takes the directory's lock without waiting (flock, released
// by the kernel when the process ends, however it ends). When another
// process holds it, the error matches ErrStateDirLocked and names its PID.
func LockStateDir(dir string) (*StateLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by PID %s (stop it, or give this one a STATE_DIR of its own)", ErrStateDirLocked, dir, holder(f))
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &StateLock{f: f}, nil
}

// StateDirHolder is the PID of the process that holds dir's lock, "" when
// none does (doctor's question).
func StateDirHolder(dir string) string {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return ""
	}
	return holder(f)
}

func holder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid := strings.TrimSpace(string(b[:n])); pid != "" {
		return pid
	}
	return "unknown"
}

// Release gives the lock up.
func (l *StateLock) Release() {
	if l != nil && l.f != nil {
		_ = l.f.Close()
	}
}

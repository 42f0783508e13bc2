package fordapi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateDirPrivate reports whether dir is private enough for tokens.
func stateDirPrivate(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s can be written by other users (mode %o); run chmod 700 %s", dir, st.Mode().Perm(), dir)
	}
	return nil
}

// PrepareStateDir creates dir with mode 0700 if needed and refuses a
// directory that other users can write to.
func PrepareStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	return stateDirPrivate(dir)
}

// TokenFileName is the token's file in STATE_DIR.
const TokenFileName = tokenFileName

// SignInFiles are the files in STATE_DIR that are one sign-in's: the
// token, the pending sign-in, the call budget, the sign-in throttle and
// what Ford's protocol was found to be.
func SignInFiles() []string {
	return []string{tokenFileName, loginFileName, budgetFileName, codesFileName, protocolFileName}
}

// privateFiles are the state files that hold secrets: the token, the
// pending sign-in's PKCE verifier, and the key that signs doctor's reports
// (bridge/reportsig.go).
var privateFiles = []string{tokenFileName, loginFileName, "doctor.key", "fordconnect.json"}

// FixPrivateModes makes the secret files in dir readable by their owner
// only (0600) and returns the ones it had to fix, each with its old mode,
// so the caller can say so; a secret file that is a symbolic link is an
// error (ErrSymlink): it is never read through the link.
func FixPrivateModes(dir string) ([]string, error) {
	var fixed []string
	var links []error
	for _, name := range privateFiles {
		path := filepath.Join(dir, name)
		fi, err := os.Lstat(path)
		if err == nil && fi.Mode()&os.ModeSymlink != 0 {
			links = append(links, fmt.Errorf("%s %w", path, ErrSymlink))
			continue
		}
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return fixed, fmt.Errorf("%s is readable by others (mode %o) and cannot be made private: %w", path, perm, err)
			}
			fixed = append(fixed, fmt.Sprintf("%s (was %o)", name, perm))
		}
	}
	return fixed, errors.Join(links...)
}

package bridge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// The sign-in page shows the last doctor report retained on P/bridge/doctor
// only when doctor on this installation wrote it: doctor signs the report
// with a key kept in STATE_DIR (which doctor and the bridge share), and the
// bridge checks the signature. Anyone else who can publish there (a broker
// without the shipped ACL) cannot put words on a page users trust.
const reportKeyFile = "doctor.key"

// reportKey reads the installation's report key, creating it the first
// time (32 random bytes, 0600).
func reportKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, reportKeyFile)
	if data, err := fordapi.ReadSecretFile(path); err == nil {
		key, err := hex.DecodeString(string(data))
		if err == nil && len(key) == 32 {
			return key, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := fordapi.WriteFileAtomic(path, []byte(hex.EncodeToString(key))); err != nil {
		return nil, err
	}
	return key, nil
}

// reportMAC is the signature of a report: an HMAC-SHA256 of its JSON
// without the signature.
func reportMAC(key []byte, r Report) string {
	r.Sig = ""
	data, _ := json.Marshal(r)
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil))
}

// SignReport signs r with the installation's key in dir.
func SignReport(dir string, r Report) (Report, error) {
	key, err := reportKey(dir)
	if err != nil {
		return r, err
	}
	r.Sig = reportMAC(key, r)
	return r, nil
}

// verifyReport reports whether r was signed with key.
func verifyReport(key []byte, r Report) bool {
	if len(key) == 0 || r.Sig == "" {
		return false
	}
	return hmac.Equal([]byte(r.Sig), []byte(reportMAC(key, r)))
}

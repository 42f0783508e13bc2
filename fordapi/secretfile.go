package fordapi

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrSymlink: a secret file is a symbolic link. Tokens are never read
// through one: the file it points to may be readable by anyone, and
// writes replace the link, not its target.
var ErrSymlink = errors.New("is a symbolic link; secrets are not read through links: replace it with the file itself")

// ReadSecretFile reads a file that holds secrets without following a
// symbolic link (O_NOFOLLOW). A missing file matches os.ErrNotExist.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s %w", path, ErrSymlink)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4<<20))
}

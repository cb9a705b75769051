//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package meter

import (
	"errors"
	"os"
)

// errLocked is never returned here: on this platform the spool is not
// locked (see [WithSpool]).
var errLocked = errors.New("locked")

func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}

// syncDir does nothing: directories cannot be synced here (Windows); a
// rename is made durable by the file system's own journal.
func syncDir(string) error { return nil }

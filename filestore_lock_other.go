//go:build !unix

package reauth

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"
)

// staleLock is how long a lock file may exist before it is taken for the
// leftover of a process that died holding it. Changes under the lock take
// milliseconds.
const staleLock = 30 * time.Second

// lockFile takes the lock by creating name+".excl" exclusively (there is
// no flock here), polling so that ctx can end the wait.
func lockFile(ctx context.Context, name string) (unlock func(), err error) {
	excl := name + ".excl"
	wait := 100 * time.Microsecond
	for {
		f, err := os.OpenFile(excl, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { _ = os.Remove(excl) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, err := os.Stat(excl); err == nil && time.Since(fi.ModTime()) > staleLock {
			_ = os.Remove(excl)
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Millisecond)
	}
}

// syncDir does nothing: directories cannot be synced here; the rename is
// atomic all the same.
func syncDir(string) error { return nil }

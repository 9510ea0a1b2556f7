package reauth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// FileStore is a [TokenStore] in a directory, for the processes of one
// machine (the runs of a CLI, the workers of a server). Each key has up to
// four files, all mode 0600 in a directory of mode 0700:
//
//	<key>.token  the entry (see [EncodeStoredToken])
//	<key>.lease  the lease: holder and end
//	<key>.cool   the cool-down: until when
//	<key>.lock   locked (flock on unix) while one of the above changes
//
// Every change is made under the lock by writing a temporary file, syncing
// it, renaming it over the old one and syncing the directory, so a crash at
// any point leaves either the old file or the new one. A dead lease holder
// loses its lease when the lease's time ends.
//
// Set the fields before the first use; a FileStore is safe for concurrent
// use by goroutines and processes.
type FileStore struct {
	// Encryption, if set, seals entries with AES-GCM; entries written
	// without it (or with another key) then read as [ErrStoreWrongKey].
	Encryption *EntryEncryption
	// Now is the clock for leases and versions; nil: time.Now. Tests set it.
	Now func() time.Time

	dir string
}

// NewFileStore returns a FileStore in the directory path, creating it with
// mode 0700 if it does not exist. On unix it refuses a directory that others
// may read or write.
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("reauth: NewFileStore: the path is empty; pass a directory only this user can read, e.g. filepath.Join(os.UserCacheDir(), \"myapp\", \"tokens\")")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("reauth: NewFileStore: creating the directory: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reauth: NewFileStore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("reauth: NewFileStore: %s is not a directory", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("reauth: NewFileStore: other users may use %s (mode %#o); run chmod 700 on it or pick a directory of your own", path, fi.Mode().Perm())
	}
	return &FileStore{dir: path}, nil
}

func (s *FileStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *FileStore) file(key, suffix string) (string, error) {
	if !validStoreKey(key) {
		return "", fmt.Errorf("reauth: FileStore: invalid key %q: use 1 to 128 letters, digits, '-' or '_' (StoreKey returns such keys)", truncateKey(key))
	}
	return filepath.Join(s.dir, key+suffix), nil
}

// Load implements [TokenStore].
func (s *FileStore) Load(ctx context.Context, key string) (StoredToken, error) {
	name, err := s.file(key, ".token")
	if err != nil {
		return StoredToken{}, err
	}
	if err := ctx.Err(); err != nil {
		return StoredToken{}, err
	}
	// No lock: a rename replaces the file whole, so a reader sees the old
	// entry or the new one.
	data, err := readSmall(name)
	if errors.Is(err, fs.ErrNotExist) {
		return StoredToken{}, ErrStoreMiss
	}
	if err != nil {
		return StoredToken{}, fmt.Errorf("reauth: FileStore: reading the entry: %w", err)
	}
	return DecodeStoredToken(key, data, s.Encryption)
}

// CompareAndSwap implements [TokenStore].
func (s *FileStore) CompareAndSwap(ctx context.Context, key string, old uint64, next StoredToken) (uint64, bool, error) {
	name, err := s.file(key, ".token")
	if err != nil {
		return 0, false, err
	}
	var version uint64
	var swapped bool
	err = s.locked(ctx, key, func() error {
		data, err := readSmall(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if cur := StoredVersion(data); cur != old {
			version = cur
			return nil
		}
		version = NextStoredVersion(old, s.now())
		enc, err := EncodeStoredToken(key, version, next, s.Encryption)
		if err != nil {
			return err
		}
		swapped = true
		return s.writeFile(name, enc)
	})
	if err != nil {
		return 0, false, err
	}
	return version, swapped, nil
}

// AcquireLease implements [TokenStore].
func (s *FileStore) AcquireLease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error) {
	name, err := s.file(key, ".lease")
	if err != nil {
		return false, err
	}
	if err := checkLease(holder, ttl); err != nil {
		return false, err
	}
	var acquired bool
	err = s.locked(ctx, key, func() error {
		now := s.now()
		cur, end, err := readLease(name)
		if err != nil {
			return err
		}
		if cur != "" && cur != holder && now.Before(end) {
			return nil
		}
		acquired = true
		return s.writeFile(name, []byte(holder+"\n"+strconv.FormatInt(now.Add(ttl).UnixNano(), 10)+"\n"))
	})
	return acquired, err
}

// ReleaseLease implements [TokenStore].
func (s *FileStore) ReleaseLease(ctx context.Context, key, holder string) error {
	name, err := s.file(key, ".lease")
	if err != nil {
		return err
	}
	return s.locked(ctx, key, func() error {
		cur, _, err := readLease(name)
		if err != nil || cur != holder {
			return err
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return syncDir(s.dir)
	})
}

// CoolDown implements [TokenStore].
func (s *FileStore) CoolDown(ctx context.Context, key string) (time.Time, error) {
	name, err := s.file(key, ".cool")
	if err != nil {
		return time.Time{}, err
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	return readCoolDown(name)
}

// SetCoolDown implements [TokenStore].
func (s *FileStore) SetCoolDown(ctx context.Context, key string, until time.Time) error {
	name, err := s.file(key, ".cool")
	if err != nil {
		return err
	}
	return s.locked(ctx, key, func() error {
		cur, err := readCoolDown(name)
		if err != nil {
			return err
		}
		if !until.After(cur) {
			return nil
		}
		return s.writeFile(name, []byte(strconv.FormatInt(until.UnixNano(), 10)+"\n"))
	})
}

// locked runs f holding the key's lock file, waiting for it as long as ctx
// allows.
func (s *FileStore) locked(ctx context.Context, key string, f func() error) error {
	name, err := s.file(key, ".lock")
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, name)
	if err != nil {
		return fmt.Errorf("reauth: FileStore: locking %s: %w", filepath.Base(name), err)
	}
	defer unlock()
	if err := f(); err != nil {
		return fmt.Errorf("reauth: FileStore: %w", err)
	}
	return nil
}

// fileStoreBeforeRename, if set, runs after the temporary file is written
// and synced, before it is renamed: the crash test stops a child process
// there.
var fileStoreBeforeRename func()

// writeFile replaces name with data: a temporary file (fixed name: writes
// happen under the key's lock, so a leftover one is from a writer that
// died), fsync, rename, fsync of the directory.
func (s *FileStore) writeFile(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if fileStoreBeforeRename != nil {
		fileStoreBeforeRename()
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(s.dir)
}

func readSmall(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxEntrySize {
		// DecodeStoredToken reports it as invalid; don't read it.
		return make([]byte, maxEntrySize+1), nil
	}
	data := make([]byte, fi.Size())
	_, err = f.ReadAt(data, 0)
	if err != nil && fi.Size() > 0 {
		return nil, err
	}
	return data, nil
}

func readLease(name string) (holder string, end time.Time, err error) {
	data, err := readSmall(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, err
	}
	h, e, ok := strings.Cut(strings.TrimSpace(string(data)), "\n")
	ns, perr := strconv.ParseInt(e, 10, 64)
	if !ok || perr != nil {
		return "", time.Time{}, nil // unreadable: as if there were no lease
	}
	return h, time.Unix(0, ns), nil
}

func readCoolDown(name string) (time.Time, error) {
	data, err := readSmall(name)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reauth: FileStore: reading the cool-down: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return time.Time{}, nil // unreadable: no cool-down
	}
	return time.Unix(0, ns), nil
}

func checkLease(holder string, ttl time.Duration) error {
	if holder == "" || len(holder) > 128 || strings.ContainsAny(holder, "\n\r") {
		return errors.New("reauth: lease holder must be 1 to 128 bytes without line breaks; use NewLeaseHolder")
	}
	if ttl <= 0 {
		return fmt.Errorf("reauth: lease ttl must be positive, got %v", ttl)
	}
	return nil
}

func validStoreKey(key string) bool {
	if key == "" || len(key) > 128 {
		return false
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func truncateKey(key string) string {
	if len(key) > 40 {
		return key[:40] + "…"
	}
	return key
}

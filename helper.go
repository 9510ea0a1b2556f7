package reauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Bounds on the helpers a keychain runs (GOAUTH commands, git credential,
// docker-credential-*): each runs at most this long and may print at most
// this much.
const (
	helperTimeout   = 30 * time.Second
	maxHelperOutput = 1 << 20
)

// runHelper runs name with args in dir (the current directory when ""),
// stdin on its standard input, within timeout, and returns its standard
// output, at most maxHelperOutput bytes. Its standard error is discarded:
// helpers print secrets there too. Git and Git Credential Manager are told
// not to prompt.
func runHelper(ctx context.Context, timeout time.Duration, dir string, stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GCM_INTERACTIVE=never")
	out := &boundedBuffer{max: maxHelperOutput, stop: cancel}
	cmd.Stdout = out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case out.over:
		return nil, fmt.Errorf("reauth: %s printed more than %d bytes", name, maxHelperOutput)
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("reauth: %s did not finish within %s", name, timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.Bytes(), &helperExitError{name: name, code: ee.ExitCode()}
		}
		return nil, fmt.Errorf("reauth: running %s: %w", name, err)
	}
	return out.Bytes(), nil
}

// helperExitError is a helper that exited non-zero; its output is returned
// alongside for protocols that explain a failure on stdout (docker's
// "credentials not found").
type helperExitError struct {
	name string
	code int
}

func (e *helperExitError) Error() string {
	return fmt.Sprintf("reauth: %s exited with status %d", e.name, e.code)
}

// boundedBuffer keeps at most max bytes; when more are written it notes it
// and stops the helper.
type boundedBuffer struct {
	buf  bytes.Buffer // not embedded: its ReadFrom would bypass Write
	max  int
	over bool
	stop func()
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.over = true
		b.stop()
		return 0, errors.New("output too large")
	}
	return b.buf.Write(p)
}

// Bytes returns what was written.
func (b *boundedBuffer) Bytes() []byte { return b.buf.Bytes() }

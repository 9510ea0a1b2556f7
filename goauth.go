package reauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// GOAUTHKeychain returns a Keychain that finds credentials as the go command
// does with spec as $GOAUTH (see "go help goauth"): a semicolon-separated
// list of "off", "netrc", "git DIR" (an absolute directory to run "git
// credential fill" in) and commands (a program and its arguments, which
// prints URL prefixes and the header fields for them). Before the first
// request the commands run with no arguments; after a 401 they run again,
// once per request, with the request URL as an argument and the response
// (status line, header fields) on stdin, and "git credential fill" runs for
// the URL; the request is retried if that gives other fields. "git
// credential approve" runs when a request with git's credentials succeeds,
// "reject" when they are refused. Every header field of the longest
// matching URL prefix is sent (but those no credentials may set, see
// [AuthRequest.Set]), only to URLs under that prefix, and only over https.
//
// An empty spec (GOAUTH unset) means "netrc", as for the go command.
//
// Every helper runs with a timeout of 30 s and at most 1 MiB of output; its
// stderr is discarded (it may hold a secret), so errors say only how it
// failed.
func GOAUTHKeychain(spec string) (Keychain, error) {
	if strings.TrimSpace(spec) == "" {
		spec = "netrc" // the go command's default
	}
	e, err := parseGOAUTH(spec)
	if err != nil {
		return nil, err
	}
	return &goauthKeychain{e: e}, nil
}

type goauthKeychain struct{ e *goauthEngine }

func (k *goauthKeychain) String() string { return "GOAUTH" }

// Resolve returns credentials for an https origin, nil for GOAUTH=off and
// for other schemes (the go command sends GOAUTH credentials over https
// only).
func (k *goauthKeychain) Resolve(_ context.Context, origin string) (Credentials, error) {
	u, err := parseKeychainOrigin(origin)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" || len(k.e.steps) == 0 {
		return nil, nil
	}
	return &goauthCredentials{e: k.e}, nil
}

// goauthStep is one entry of the GOAUTH list.
type goauthStep struct {
	kind string   // "netrc", "git" or "command"
	args []string // git: [dir]; command: the program and its arguments
}

// goauthEngine runs the GOAUTH protocol: it keeps the header fields per URL
// prefix ("host/path", without "https://" or a final "/"), as the go
// command's credential cache does.
type goauthEngine struct {
	steps   []goauthStep
	netrc   func() ([]netrcEntry, error) // the netrc step's entries
	timeout time.Duration

	initOnce sync.Once
	mu       sync.Mutex
	prefixes map[string]http.Header
	git      map[string]gitFilled // per Authorization value filled by git
}

// gitFilled is a "git credential fill" answer, kept to report back with
// approve or reject in the same directory.
type gitFilled struct {
	dir string
	out []byte
}

// netrcEntry is a complete machine entry, as the go command reads it.
type netrcEntry struct{ machine, login, password string }

func parseGOAUTH(spec string) (*goauthEngine, error) {
	e := &goauthEngine{timeout: helperTimeout, prefixes: map[string]http.Header{}, git: map[string]gitFilled{}}
	e.netrc = goNetrcEntries
	parts := strings.Split(spec, ";")
	for i, p := range parts {
		words, err := splitQuoted(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("reauth: GOAUTH entry %d: %s", i+1, err)
		}
		if len(words) == 0 {
			return nil, fmt.Errorf("reauth: GOAUTH entry %d is empty; separate entries with one ';'", i+1)
		}
		switch words[0] {
		case "off":
			if len(parts) != 1 {
				return nil, errors.New("reauth: GOAUTH=off cannot be combined with other entries")
			}
			return e, nil
		case "netrc":
			e.steps = append(e.steps, goauthStep{kind: "netrc"})
		case "git":
			if len(words) != 2 || !filepath.IsAbs(words[1]) {
				return nil, fmt.Errorf("reauth: GOAUTH entry %d: write git followed by the absolute path of a directory to run git credential in", i+1)
			}
			if fi, err := os.Stat(words[1]); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("reauth: GOAUTH entry %d: git directory %s is not a directory", i+1, words[1])
			}
			e.steps = append(e.steps, goauthStep{kind: "git", args: words[1:]})
		default:
			e.steps = append(e.steps, goauthStep{kind: "command", args: words})
		}
	}
	return e, nil
}

// splitQuoted splits s into words at spaces, where a word may be quoted with
// ' or " (without escapes), as the go command splits a GOAUTH command.
func splitQuoted(s string) ([]string, error) {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return words, nil
		}
		if q := s[0]; q == '\'' || q == '"' {
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return nil, errors.New("a quoted word has no closing quote")
			}
			words = append(words, s[1:1+end])
			s = s[2+end:]
			if s != "" && !strings.ContainsRune(" \t\n\r", rune(s[0])) {
				return nil, errors.New("a quoted word must be followed by a space")
			}
			continue
		}
		end := strings.IndexAny(s, " \t\n\r")
		if end < 0 {
			end = len(s)
		}
		w := s[:end]
		if strings.ContainsAny(w, `"'`) {
			return nil, errors.New("a quote may only start a word")
		}
		words = append(words, w)
		s = s[end:]
	}
}

// goNetrcEntries reads $NETRC or ~/.netrc as the go command does: entries
// with a machine, a login and a password, up to a default entry.
func goNetrcEntries() ([]netrcEntry, error) {
	path, err := netrcPath()
	if err != nil {
		return nil, err
	}
	data, err := readBounded(path, maxNetrcSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reauth: netrc file %s: %w", path, err)
	}
	return parseGoNetrc(string(data)), nil
}

// parseGoNetrc is the go command's reading of a .netrc
// (cmd/go/internal/auth/netrc.go): keywords and values paired within a line,
// macdef bodies skipped to an empty line, nothing after "default".
func parseGoNetrc(data string) []netrcEntry {
	var entries []netrcEntry
	var l netrcEntry
	inMacro := false
	for _, line := range strings.Split(data, "\n") {
		if inMacro {
			inMacro = line != ""
			continue
		}
		f := strings.Fields(line)
		i := 0
		for ; i < len(f)-1; i += 2 {
			switch f[i] {
			case "machine":
				l = netrcEntry{machine: f[i+1]}
			case "login":
				l.login = f[i+1]
			case "password":
				l.password = f[i+1]
			case "macdef":
				inMacro = true
			}
			if l.machine != "" && l.login != "" && l.password != "" {
				entries = append(entries, l)
				l = netrcEntry{}
			}
		}
		if i < len(f) && f[i] == "default" {
			break
		}
	}
	return entries
}

// goauthPrefix is the cache key of a URL or URL prefix: without "https://"
// and a final "/".
func goauthPrefix(u string) string {
	return strings.TrimSuffix(strings.TrimPrefix(u, "https://"), "/")
}

// run runs the GOAUTH steps, as the go command's runGoAuth: in reverse
// order, so that an earlier entry's fields win for the same prefix. rawURL
// is "" for the run before the first request; resp is the 4xx response for
// the run after one.
func (e *goauthEngine) run(ctx context.Context, rawURL string, resp []byte) error {
	var errs []error
	for i := len(e.steps) - 1; i >= 0; i-- {
		s := e.steps[i]
		switch s.kind {
		case "netrc":
			entries, err := e.netrc()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for j := len(entries) - 1; j >= 0; j-- {
				h := http.Header{}
				h.Set("Authorization", basicFieldValue(entries[j].login, entries[j].password))
				e.store(entries[j].machine, h)
			}
		case "git":
			if rawURL == "" {
				continue
			}
			if err := e.gitFill(ctx, s.args[0], rawURL); err != nil {
				errs = append(errs, err)
			}
		case "command":
			args := s.args[1:]
			if rawURL != "" {
				args = append(append([]string(nil), args...), rawURL)
			}
			out, err := runHelper(ctx, e.timeout, "", resp, s.args[0], args...)
			if err != nil {
				errs = append(errs, fmt.Errorf("reauth: GOAUTH command %s: %s", s.args[0], strings.TrimPrefix(err.Error(), "reauth: ")))
				continue
			}
			sets, err := parseGOAUTHOutput(out)
			if err != nil {
				errs = append(errs, fmt.Errorf("reauth: GOAUTH command %s printed %s", s.args[0], err))
				continue
			}
			for _, set := range sets {
				e.store(set.prefix, set.header)
			}
		}
	}
	return errors.Join(errs...)
}

// store keeps header for prefix; an empty header removes the prefix.
func (e *goauthEngine) store(prefix string, header http.Header) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prefix = goauthPrefix(prefix)
	if len(header) == 0 {
		delete(e.prefixes, prefix)
		return
	}
	e.prefixes[prefix] = header
}

// lookup returns the fields for u from its longest stored prefix, cut at
// "/" as the go command cuts it.
func (e *goauthEngine) lookup(u *url.URL) http.Header {
	if u.Scheme != "https" {
		return nil
	}
	p := goauthPrefix(u.String())
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		if h, ok := e.prefixes[p]; ok {
			return h
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return nil
		}
		p = p[:i]
	}
}

type goauthSet struct {
	prefix string
	header http.Header
}

// parseGOAUTHOutput parses a GOAUTH command's output: blocks of https URL
// lines, an empty line, header lines, an empty line. Errors do not quote the
// output: header lines hold secrets.
func parseGOAUTHOutput(out []byte) ([]goauthSet, error) {
	var sets []goauthSet
	data := string(out)
	for data != "" {
		var urls []string
		for {
			line, rest, ok := strings.Cut(data, "\n")
			if !ok {
				return nil, errors.New("a URL block not ended by an empty line")
			}
			data = rest
			if line == "" {
				break
			}
			u, err := url.ParseRequestURI(line)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return nil, fmt.Errorf("line %d: not an https URL", lineOf(out, data))
			}
			urls = append(urls, u.String())
		}
		header := http.Header{}
		for {
			line, rest, ok := strings.Cut(data, "\n")
			if !ok {
				return nil, errors.New("a header block not ended by an empty line")
			}
			data = rest
			if line == "" {
				break
			}
			name, value, ok := strings.Cut(line, ": ")
			value = strings.TrimSpace(value)
			if !ok || !isToken(name) || hasCTL(value) {
				return nil, fmt.Errorf("line %d: not a header line", lineOf(out, data))
			}
			header.Add(name, value)
		}
		for _, u := range urls {
			sets = append(sets, goauthSet{prefix: u, header: header.Clone()})
		}
	}
	return sets, nil
}

// lineOf is the number of the line before rest, which is a tail of out.
func lineOf(out []byte, rest string) int {
	return bytes.Count(out[:len(out)-len(rest)], []byte("\n"))
}

// goauthResponse is the 4xx response as a GOAUTH command reads it on stdin:
// status line, header lines (values of one field joined with ", "), an
// empty line.
func goauthResponse(proto string, status int, h http.Header) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d %s\n", proto, status, http.StatusText(status))
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + ": " + strings.Join(h[k], ", ") + "\n")
	}
	b.WriteString("\n")
	return b.Bytes()
}

// gitFill runs "git credential fill" for rawURL in dir and stores Basic
// for the prefix it answers for, keeping its output for approve or reject.
func (e *goauthEngine) gitFill(ctx context.Context, dir, rawURL string) error {
	out, err := runHelper(ctx, e.timeout, dir, []byte("url="+rawURL+"\n"), "git", "credential", "fill")
	if err != nil {
		return fmt.Errorf("reauth: GOAUTH git credential fill: %s", strings.TrimPrefix(err.Error(), "reauth: "))
	}
	prefix, username, password := parseGitCredential(out)
	if prefix == "" {
		return errors.New("reauth: GOAUTH git credential fill gave no protocol and host")
	}
	if !strings.HasPrefix(rawURL, prefix) {
		return errors.New("reauth: GOAUTH git credential fill answered for another URL")
	}
	if strings.ContainsRune(username, ':') || hasCTL(username) || hasCTL(password) {
		return errors.New("reauth: GOAUTH git credential fill gave a username or password Basic cannot carry")
	}
	value := basicFieldValue(username, password)
	h := http.Header{}
	h.Set("Authorization", value)
	e.store(prefix, h)
	e.mu.Lock()
	if len(e.git) >= maxCachedOrigins {
		clear(e.git)
	}
	e.git[value] = gitFilled{dir: dir, out: out}
	e.mu.Unlock()
	return nil
}

// parseGitCredential reads "git credential fill" output as the go command
// does: the prefix from protocol, host and path (or url), and the login.
func parseGitCredential(out []byte) (prefix, username, password string) {
	p := new(url.URL)
	for _, line := range strings.Split(string(out), "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch key {
		case "protocol":
			p.Scheme = value
		case "host":
			p.Host = value
		case "path":
			p.Path = value
		case "username":
			username = value
		case "password":
			password = value
		case "url":
			if u, err := url.ParseRequestURI(value); err == nil {
				p = u
			}
		}
	}
	if p.Scheme == "" || p.Host == "" {
		return "", username, password
	}
	return p.String(), username, password
}

// gitReport runs "git credential approve" (ok) or "reject" for the fill
// that gave value, once; errors are ignored, as the go command ignores them.
func (e *goauthEngine) gitReport(ctx context.Context, value string, ok bool) {
	e.mu.Lock()
	filled, found := e.git[value]
	delete(e.git, value)
	e.mu.Unlock()
	if !found {
		return
	}
	action := "reject"
	if ok {
		action = "approve"
	}
	_, _ = runHelper(ctx, e.timeout, filled.dir, filled.out, "git", "credential", action)
}

// goauthCredentials send the header fields GOAUTH gives for the longest
// prefix of the request's URL. r.State holds the fields set on the attempt
// (a stored header, never modified once stored).
type goauthCredentials struct{ e *goauthEngine }

// Authorize sets every field of the longest matching prefix. The commands
// run before the first request of any: as in the go command, a step that
// fails then leaves the others' fields, and only the run after a refusal
// reports. That first run is shared by every request, so one caller's
// cancellation must not cut it short; the helper timeout bounds it.
func (c *goauthCredentials) Authorize(r *AuthRequest) error {
	if r.Proxy() != nil {
		return nil
	}
	c.e.initOnce.Do(func() { _ = c.e.run(context.WithoutCancel(r.Context()), "", nil) })
	h := c.e.lookup(r.Request().URL)
	for k, v := range h {
		r.Set(k, strings.Join(v, ", "))
	}
	r.State = h
	return nil
}

// Refused tells git that the credentials it filled were refused, then runs
// the steps again, once per request, with the URL and the refusal on stdin,
// as the go command does after a 4xx. It asks for a retry only when that
// gives other fields for the URL.
//
// git learns of every refusal here: the seam calls Refused while the leg has
// retries left, and GOAUTH asks only for RetryChallenge, so RetryNonce is
// always left and each 401 that refuses GOAUTH's fields reaches Refused. A
// refused set of fields is never sent again in the request (DESIGN.md,
// invariant 2), so rejecting it at once loses nothing.
func (c *goauthCredentials) Refused(r *AuthRequest, ref *Refusal) (Retry, error) {
	if r.Proxy() != nil {
		return 0, nil
	}
	sent, _ := r.State.(http.Header)
	if v := sent.Get("Authorization"); v != "" {
		c.e.gitReport(r.Context(), v, false)
	}
	if ref.Allowed&RetryChallenge == 0 {
		return 0, nil
	}
	u := r.Request().URL
	proto := ref.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	err := c.e.run(r.Context(), u.String(), goauthResponse(proto, ref.StatusCode, ref.Header))
	now := c.e.lookup(u)
	if len(now) == 0 && err != nil {
		return 0, fmt.Errorf("%w: %s", ErrNoCredentials, strings.TrimPrefix(err.Error(), "reauth: "))
	}
	if len(now) == 0 || sameHeader(now, sent) {
		return 0, nil
	}
	return RetryChallenge, nil
}

// Observe tells git that the credentials it filled were taken.
func (c *goauthCredentials) Observe(r *AuthRequest, resp *http.Response) error {
	if r.Proxy() != nil {
		return nil
	}
	if sent, _ := r.State.(http.Header); resp.StatusCode < 400 && sent.Get("Authorization") != "" {
		c.e.gitReport(r.Context(), sent.Get("Authorization"), true)
	}
	return nil
}

// sameHeader reports whether a and b hold the same fields and values.
func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

package reauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Bounds on a .netrc file: it is read whole, at most this large, and its
// lines are at most as long as curl reads them.
const (
	maxNetrcSize = 1 << 20
	maxNetrcLine = 4095
)

// NetrcKeychain returns a Keychain of the logins in a .netrc file, read
// once, now. An empty path means $NETRC, else ~/.netrc (on Windows
// %USERPROFILE%\_netrc when it exists, else .netrc), as the go command
// finds it; a missing default file is an empty keychain, a missing named one
// an error.
//
// The file is read as curl (7.84 and later) reads it: tokens separated by
// white space on any number of lines; the keywords machine, default, login
// and password (account and others are skipped); "#" starting a comment to
// the end of the line; values in double quotes with \", \\, \n, \r and \t;
// a macdef (outside a machine entry) and the lines after it skipped until
// an empty line. The first machine whose name equals the origin's host (in
// any case, and whatever the port) gives the login, else a default entry
// that comes first. The go command reads the same entries from the same
// file, except that it ignores default entries and entries without both a
// login and a password, and takes quotes literally.
//
// The credentials are [Basic], sent up front ([Preemptive]) as curl and the
// go command send them, and so only over https or to loopback (DESIGN.md,
// Plain http). A file curl would stop at (an unclosed quote) is an error
// naming the file and line, never its text.
func NetrcKeychain(path string) (Keychain, error) {
	explicit := path != ""
	if !explicit {
		var err error
		if path, err = netrcPath(); err != nil {
			return nil, err
		}
	}
	data, err := readBounded(path, maxNetrcSize)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return &netrcKeychain{path: path}, nil
		}
		return nil, fmt.Errorf("reauth: netrc file %s: %w", path, err)
	}
	n := &netrcKeychain{path: path, lines: netrcLines(data)}
	if _, err := n.lookup("", true); err != nil {
		return nil, err
	}
	return n, nil
}

// netrcPath is where the go command looks for .netrc.
func netrcPath() (string, error) {
	if env := os.Getenv("NETRC"); env != "" {
		return env, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("reauth: no .netrc path: $NETRC is unset and %s", strings.TrimPrefix(err.Error(), "reauth: "))
	}
	if runtime.GOOS == "windows" {
		legacy := filepath.Join(home, "_netrc")
		if _, err := os.Stat(legacy); err == nil {
			return legacy, nil
		}
	}
	return filepath.Join(home, ".netrc"), nil
}

// readBounded reads the file at path, failing when it is larger than max.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return buf.Bytes(), nil
}

type netrcKeychain struct {
	path  string
	lines [][]byte // each ending in '\n', as curl reads them
}

func (n *netrcKeychain) String() string { return "netrc " + n.path }

// Resolve returns the login for origin's host, or nil when the file has none.
func (n *netrcKeychain) Resolve(_ context.Context, origin string) (Credentials, error) {
	u, err := parseKeychainOrigin(origin)
	if err != nil {
		return nil, err
	}
	m, err := n.lookup(u.Hostname(), false)
	if err != nil || !m.found {
		return nil, err
	}
	return Preemptive(Basic(m.login, m.password)), nil
}

// netrcLines splits data into lines that each end in '\n'.
func netrcLines(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, append(data[:len(data):len(data)], '\n'))
			break
		}
		lines = append(lines, data[:i+1])
		data = data[i+1:]
	}
	return lines
}

type netrcMatch struct {
	login, password string
	found           bool // a login or password was given for the host
}

// States of curl's netrc reader (lib/netrc.c).
const (
	netrcNothing   = iota // between entries
	netrcHostFound        // after "machine": the name comes next
	netrcHostValid        // inside the entry for the host (or default)
	netrcMacdef           // inside a macro definition
)

// lookup runs curl's reading of the file for host. With validate, no entry
// matches and the whole file is read, to find syntax errors up front.
func (n *netrcKeychain) lookup(host string, validate bool) (netrcMatch, error) {
	var m netrcMatch
	state := netrcNothing
	keyword := ""
	for ln, line := range n.lines {
		if len(line) > maxNetrcLine+1 {
			return m, fmt.Errorf("reauth: netrc file %s line %d is longer than %d bytes", n.path, ln+1, maxNetrcLine)
		}
		if bytes.IndexByte(line, 0) >= 0 {
			return m, fmt.Errorf("reauth: netrc file %s line %d contains a NUL byte", n.path, ln+1)
		}
		if state == netrcMacdef {
			if line[0] != '\n' && line[0] != '\r' {
				continue
			}
			state = netrcNothing
		}
		for pos := 0; pos < len(line); {
			for pos < len(line) && (line[pos] == ' ' || line[pos] == '\t') {
				pos++
			}
			if pos == len(line) || line[pos] == '#' {
				break
			}
			tok, next, ok := netrcToken(line, pos)
			if !ok {
				return m, fmt.Errorf("reauth: netrc file %s line %d: a quoted value has no closing quote (\")", n.path, ln+1)
			}
			pos = next
			if m.login != "" && m.password != "" {
				return m, nil
			}
			switch state {
			case netrcNothing:
				switch {
				case strings.EqualFold(tok, "macdef"):
					state = netrcMacdef
				case strings.EqualFold(tok, "machine"):
					state = netrcHostFound
				case strings.EqualFold(tok, "default") && !validate:
					state = netrcHostValid
				}
			case netrcHostFound:
				state = netrcNothing
				if !validate && strings.EqualFold(tok, host) {
					state = netrcHostValid
				}
			case netrcHostValid:
				switch {
				case keyword == "login":
					m.login, m.found, keyword = tok, true, ""
				case keyword == "password":
					m.password, m.found, keyword = tok, true, ""
				case strings.EqualFold(tok, "login"), strings.EqualFold(tok, "password"):
					keyword = strings.ToLower(tok)
				case strings.EqualFold(tok, "machine"):
					state, keyword = netrcHostFound, ""
					m.login, m.password = "", ""
				case strings.EqualFold(tok, "default"):
					keyword = ""
					m.login, m.password = "", ""
				}
			}
		}
	}
	return m, nil
}

// netrcToken reads the token at line[pos] (not a blank) and returns it with
// where the next one may start: as curl does, one byte after the token's
// end, so a byte right after a closing quote is skipped, and a white-space
// byte other than blank (a '\r' or a second '\n'…) ends an empty token.
// ok is false for a quote that is not closed on its line.
func netrcToken(line []byte, pos int) (tok string, next int, ok bool) {
	if line[pos] != '"' {
		end := pos
		for end < len(line) && !isNetrcSpace(line[end]) {
			end++
		}
		return string(line[pos:end]), end + 1, true
	}
	var b strings.Builder
	escape := false
	for i := pos + 1; i < len(line); i++ {
		c := line[i]
		if escape {
			switch c {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			}
			escape = false
		} else if c == '\\' {
			escape = true
			continue
		} else if c == '"' {
			return b.String(), i + 2, true
		}
		b.WriteByte(c)
	}
	return "", 0, false
}

// isNetrcSpace is C's isspace in the C locale, which ends a token for curl.
func isNetrcSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

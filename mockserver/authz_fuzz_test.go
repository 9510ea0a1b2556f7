package mockserver

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// fuzzPaths are the scenarios that read the Authorization field.
var fuzzPaths = []struct {
	method, path string
}{
	{"GET", "/basic/"}, {"GET", "/bearer/"}, {"GET", "/bearer/admin"},
	{"GET", "/digest/"}, {"GET", "/digest/userhash/"}, {"POST", "/digest/auth-int/"}, {"GET", "/digest/stale/"},
	{"GET", "/oauth2/resource"}, {"POST", "/oauth2/token"}, {"POST", "/oauth2/revoke"},
	{"GET", "/registry/token"}, {"POST", "/registry/token"}, {"GET", "/v2/team/app/tags/list"},
	{"GET", "/forbidden/"}, {"GET", "/hidden/"}, {"GET", "/apache/"}, {"GET", "/no-challenge/"}, {"GET", "/stepup/"},
	{"GET", "/malformed/mixed/"},
	{"GET", "/dpop/resource"}, {"GET", "/dpop/nonce/resource"}, {"POST", "/dpop/token"},
}

// FuzzMockAuthorization sends the server arbitrary Authorization fields
// (one per line of field) on every scenario that reads them, with an
// arbitrary query or form body. The server must answer without a panic or a
// 500, refuse fields over MaxAuthorizationBytes unparsed, let nobody in with
// credentials it does not know, and keep the secrets of what it was sent
// out of its answer and its request log. The seed corpus is in
// testdata/fuzz/FuzzMockAuthorization.
func FuzzMockAuthorization(f *testing.F) {
	srv, err := NewUnstarted(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	srv.cfg.Clock = NewManualClock(testStart)
	srv.clock = srv.cfg.Clock
	f.Fuzz(func(t *testing.T, which byte, field, extra string) {
		p := fuzzPaths[int(which)%len(fuzzPaths)]
		req := httptest.NewRequest(p.method, p.path, nil)
		if p.method == http.MethodPost {
			req = httptest.NewRequest(p.method, p.path, strings.NewReader(extra))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req.URL.RawQuery = extra
		}
		values := strings.Split(field, "\n")
		if field != "" {
			req.Header["Authorization"] = values
		}
		srv.ResetRequests()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		status := rec.Code

		if status == http.StatusInternalServerError || status < 200 || status > 599 {
			t.Fatalf("%s %s answered %d", p.method, p.path, status)
		}
		if len(values) == 1 && len(strings.Trim(field, " \t")) > MaxAuthorizationBytes && status != http.StatusBadRequest && !publicPull(p.path) {
			t.Fatalf("a field of %d bytes got %d, not 400", len(field), status)
		}
		if status == http.StatusOK && field != "" && len(values) == 1 && !knownCredential(field, p.path) && !publicPull(p.path) && !tokenRequest(p.path) {
			t.Fatalf("%s %s let in credentials it does not know: %d", p.method, p.path, status)
		}

		// No secret of the request in the answer or in the log.
		reqs := srv.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%d log entries for one request", len(reqs))
		}
		logged := reqs[0].Credential + " " + reqs[0].Query
		answer := rec.Body.String()
		for k, v := range rec.Header() {
			answer += k + ": " + strings.Join(v, ", ")
		}
		for _, v := range values {
			for _, s := range fieldSecrets(v) {
				if strings.Contains(logged, s) {
					t.Fatalf("the request log shows a secret of %q: %s", v, logged)
				}
				if strings.Contains(answer, s) && !strings.Contains(extra, s) {
					t.Fatalf("the answer shows a secret of %q: %s", v, answer)
				}
			}
		}
	})
}

// publicPull reports whether path serves anonymous clients: the public
// repository's reads need no credentials.
func publicPull(path string) bool { return strings.HasPrefix(path, "/v2/") }

// tokenRequest reports whether path is a token endpoint, where what
// authenticates the client may be in the form rather than the field.
func tokenRequest(path string) bool {
	return strings.HasPrefix(path, "/oauth2/token") || strings.HasPrefix(path, "/oauth2/revoke") || strings.HasPrefix(path, "/registry/token") ||
		strings.HasPrefix(path, "/dpop/") && strings.HasSuffix(path, "/token")
}

// knownCredential is the test's own account of what may get a 200: the
// Basic credentials of an admin (or any user where users suffice) and the
// static tokens with the scopes the path needs. Digest and OAuth2 need
// values the fuzzer cannot compute (a keyed digest, a random token).
func knownCredential(field, path string) bool {
	scheme, rest := splitField(field)
	cfg := DefaultConfig()
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return false
		}
		user, password, _ := strings.Cut(string(raw), ":")
		if cfg.Users[user] != password || user == "" {
			return false
		}
		switch {
		case strings.HasPrefix(path, "/forbidden/"), strings.HasPrefix(path, "/hidden/"), strings.HasPrefix(path, "/apache/"):
			return slices.Contains(cfg.Admins, user)
		}
		return path == "/basic/" || path == "/no-challenge/" || strings.HasPrefix(path, "/malformed/")
	case strings.EqualFold(scheme, "Bearer"):
		scopes, ok := cfg.Bearer.Tokens[rest]
		switch {
		case !ok:
			return false
		case path == "/bearer/admin", strings.HasPrefix(path, "/forbidden/"), strings.HasPrefix(path, "/hidden/"):
			return slices.Contains(scopes, "admin")
		}
		return path == "/bearer/" || path == "/no-challenge/"
	}
	return false
}

// fieldSecrets returns what of an Authorization field value must never be
// shown: a Basic password, a Bearer token, a Digest response.
func fieldSecrets(v string) []string {
	scheme, rest := splitField(v)
	var out []string
	add := func(s string) {
		if looksSecret(s) {
			out = append(out, s)
		}
	}
	switch {
	case strings.EqualFold(scheme, "Basic"):
		add(rest)
		if raw, err := base64.StdEncoding.DecodeString(rest); err == nil {
			if user, password, ok := strings.Cut(string(raw), ":"); ok && !strings.Contains(user, password) && !strings.Contains(v, password) {
				add(password)
			}
		}
	case strings.EqualFold(scheme, "Bearer"):
		add(rest)
	case strings.EqualFold(scheme, "Digest"):
		// response="…": the hex digest, which a dictionary attack starts from.
		if i := strings.Index(rest, `response="`); i >= 0 {
			if j := strings.IndexByte(rest[i+10:], '"'); j >= 0 && !strings.Contains(rest[:i]+rest[i+10+j:], rest[i+10:i+10+j]) {
				add(rest[i+10 : i+10+j])
			}
		}
	}
	return out
}

// splitField splits a field value into its scheme and the rest, at the
// first space or tab.
func splitField(v string) (scheme, rest string) {
	v = strings.Trim(v, " \t")
	i := strings.IndexAny(v, " \t")
	if i < 0 {
		return v, ""
	}
	return v[:i], strings.Trim(v[i:], " \t")
}

// looksSecret reports whether s is unlike anything the server says of its
// own accord (messages, realms, header names): at least 12 bytes with a
// digit, a lower-case and an upper-case letter. A shorter or plainer value
// may turn up in an answer by chance.
func looksSecret(s string) bool {
	return len(s) >= 12 && strings.ContainsAny(s, "0123456789") &&
		strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}

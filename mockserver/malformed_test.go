package mockserver

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Paths of every scenario that reads an Authorization field, with the
// method it takes.
var authPaths = []struct{ method, path string }{
	{"GET", "/basic/"}, {"GET", "/bearer/"}, {"GET", "/bearer/admin"}, {"GET", "/digest/"}, {"GET", "/digest/userhash/"},
	{"POST", "/oauth2/token"}, {"POST", "/oauth2/revoke"}, {"GET", "/oauth2/resource"},
	{"GET", "/registry/token"}, {"POST", "/registry/token"}, {"GET", "/v2/"}, {"PUT", "/v2/team/app/manifests/x"},
	{"GET", "/forbidden/"}, {"GET", "/hidden/"}, {"GET", "/apache/"}, {"GET", "/no-challenge/"},
	{"GET", "/malformed/"}, {"GET", "/stepup/"}, {"GET", "/stepup/max-age/"},
	{"POST", "/dpop/token"}, {"POST", "/dpop/nonce/token"}, {"GET", "/dpop/resource"}, {"GET", "/dpop/nonce/resource"},
}

// An Authorization field that breaks the credentials grammar of RFC 9110
// §11.4 gets 400 from every scenario, with a message that names the fault
// and never echoes the field.
func TestMalformedAuthorizationIs400Everywhere(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		name   string
		values []string
		says   string
	}{
		{"unterminated quoted-string", []string{`Digest username="alice, realm="x`}, "malformed Authorization field"},
		{"auth-param without '='", []string{`Digest username="alice", realm, nonce="n"`}, "has no '='"},
		{"duplicate auth-param", []string{`Digest username="alice", username="bob"`}, "given twice"},
		{"token68 then auth-param", []string{`Basic YWxpY2U6d29uZGVybGFuZA==, realm="x"`}, "token68 followed by an auth-param"},
		{"two credentials in one field", []string{`Basic YWxpY2U6d29uZGVybGFuZA==, Bearer abc`}, "carries 2 credentials"},
		{"two Authorization fields", []string{basic("alice", "wonderland"), bearer("mock-token-read")}, "2 Authorization fields"},
		{"empty field", []string{""}, "empty Authorization field"},
		{"blank field", []string{"   "}, "empty Authorization field"},
		{"over the size limit", []string{"Bearer " + strings.Repeat("a", MaxAuthorizationBytes)}, "over the 8192-byte limit"},
		{"characters outside the grammar", []string{"Basic {secret}"}, "malformed Authorization field"},
		{"non-ASCII bytes", []string{"Basic \xff\xfe"}, "malformed Authorization field"},
		{"scheme only then garbage", []string{"Digest ,,, =x"}, "malformed Authorization field"},
	}
	for _, tt := range tests {
		for _, p := range authPaths {
			t.Run(tt.name+" "+p.method+" "+p.path, func(t *testing.T) {
				h := http.Header{"Authorization": tt.values, "Content-Type": {"application/x-www-form-urlencoded"}}
				r := send(t, p.method, srv.URL()+p.path, "", h, "grant_type=client_credentials")
				assert.Equal(t, http.StatusBadRequest, r.status)
				assert.Contains(t, r.body, tt.says)
				assert.NotContains(t, r.body, "secret")
				assert.NotContains(t, r.body, "YWxpY2U6d29uZGVybGFuZA")
			})
		}
	}
}

// Well-formed credentials that the scenario cannot use get 400 where the
// scheme is the scenario's own and malformed inside, 401 otherwise.
func TestSchemeSpecificMalformedCredentials(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		name, path, authorization string
		status                    int
		says                      string
	}{
		{"Basic: not base64", "/basic/", "Basic YWxpY2U6d29uZGVybGFuZA", 400, "not valid base64"},
		{"Basic: no colon", "/basic/", "Basic Zm9vYmFy", 400, "no ':'"},
		{"Basic: no token68", "/basic/", "Basic", 400, "empty"},
		{"Basic: auth-params", "/basic/", `Basic user="alice"`, 400, "auth-params"},
		{"Basic: unknown scheme", "/basic/", "Newauth abc", 401, "not Newauth"},
		{"Basic: scheme that is long", "/basic/", strings.Repeat("X", 500) + " abc", 401, "…"},
		{"Bearer: no token", "/bearer/", "Bearer", 400, "invalid_request"},
		{"Bearer: auth-params", "/bearer/", `Bearer token="x"`, 400, "invalid_request"},
		{"Bearer: Basic sent", "/bearer/", "Basic Zm9vYmFy", 401, "not Basic"},
		{"Digest: Basic sent", "/digest/", basic("alice", "wonderland"), 401, "Digest credentials required"},
		{"Digest: token68", "/digest/", "Digest YWxpY2U=", 400, "auth-params"},
		{"Digest: no params at all", "/digest/", "Digest", 400, "auth-params"},
		{"Digest: only a username", "/digest/", `Digest username="alice"`, 400, "lack realm"},
		{"Digest: bad username*", "/digest/", `Digest username*=latin1''J%E4son, realm="digest@reauth.mock", nonce="n", uri="/digest/", response="00", qop=auth, cnonce="c", nc=00000001`, 400, "charset must be UTF-8"},
		{"Digest: truncated %-escape", "/digest/", `Digest username*=UTF-8''J%C, realm="digest@reauth.mock", nonce="n", uri="/digest/", response="00", qop=auth, cnonce="c", nc=00000001`, 400, "percent-encoding"},
		{"registry: Basic at /v2/", "/v2/", basic("alice", "wonderland"), 401, "UNAUTHORIZED"},
		{"registry: empty Bearer", "/v2/", "Bearer", 400, "UNSUPPORTED"},
		{"forbidden: unknown scheme", "/forbidden/", "Newauth abc", 401, "unsupported auth-scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, srv.URL()+tt.path, tt.authorization)
			assert.Equal(t, tt.status, r.status)
			assert.Contains(t, r.body+r.header.Get("WWW-Authenticate"), tt.says)
			if tt.status == http.StatusUnauthorized {
				assert.NotEmpty(t, r.header.Values("WWW-Authenticate"))
			}
			assert.Less(t, len(r.body), 1024, "the answer does not echo the input")
		})
	}
}

// rawRequest sends bytes that net/http's client refuses to send, and
// returns the status line of the answer.
func rawRequest(t *testing.T, srv *Server, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = conn.Write([]byte(request))
	require.NoError(t, err)
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(line)
}

func TestHostileHeaderBytesAreRefused(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		name, authorization string
		status              string
	}{
		{"control characters", "Basic \x01\x02\x03", "400"},
		{"a NUL byte", "Bearer abc\x00def", "400"},
		{"DEL", "Bearer abc\x7f", "400"},
		{"obs-text in a quoted-string, Digest", "Digest username=\"\xe4\", realm=\"x\"", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := rawRequest(t, srv, "GET /digest/ HTTP/1.1\r\nHost: x\r\nAuthorization: "+tt.authorization+"\r\nConnection: close\r\n\r\n")
			assert.Contains(t, line, " "+tt.status+" ")
		})
	}
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/basic/", basic("alice", "wonderland")).status, "still serving")
}

func TestHugeHeadersAre431(t *testing.T) {
	srv, _ := newTestServer(t)
	line := rawRequest(t, srv, "GET /basic/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+strings.Repeat("a", 100<<10)+"\r\nConnection: close\r\n\r\n")
	assert.Contains(t, line, " 431 ")

	// net/http allows 4 KiB over MaxHeaderBytes before it refuses.
	srv, _ = newTestServer(t, func(c *Config) { c.MaxHeaderBytes = 2 << 10 })
	line = rawRequest(t, srv, "GET /basic/ HTTP/1.1\r\nHost: x\r\nX-Filler: "+strings.Repeat("a", 8<<10)+"\r\nConnection: close\r\n\r\n")
	assert.Contains(t, line, " 431 ")
}

func TestHugeBodiesAre413(t *testing.T) {
	srv, _ := newTestServer(t)
	r := send(t, http.MethodPost, srv.URL()+"/oauth2/token", clientBasic(),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.Repeat("a", MaxBodyBytes+1))
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	assert.Equal(t, 0, srv.TokenGrants())
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, http.StatusRequestEntityTooLarge, reqs[0].Status)
}

// Many auth-params within the size limit cost bounded work and a clear
// answer.
func TestManyAuthParamsAreBounded(t *testing.T) {
	srv, _ := newTestServer(t)
	var b strings.Builder
	b.WriteString("Digest ")
	for i := 0; b.Len() < MaxAuthorizationBytes-20; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("p")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(strings.Repeat("y", i/182))
		b.WriteString("=1")
	}
	r := get(t, srv.URL()+"/digest/", b.String())
	assert.Equal(t, http.StatusBadRequest, r.status)
}

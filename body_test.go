package reauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hangGuard only ends a test that would otherwise hang; nothing is asserted
// about how long anything takes.
const hangGuard = 20 * time.Second

// closeCounter is a request body without GetBody that counts its Close
// calls, and closes its reader if that is a Closer (a pipe, say).
type closeCounter struct {
	io.Reader
	closes atomic.Int32
}

func (c *closeCounter) Close() error {
	c.closes.Add(1)
	if cl, ok := c.Reader.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// fileCloseCounter is a seekable body (an *os.File, which http.NewRequest
// gives no GetBody) that counts its Close calls.
type fileCloseCounter struct {
	*os.File
	closes atomic.Int32
}

func (f *fileCloseCounter) Close() error {
	f.closes.Add(1)
	return f.File.Close()
}

// roundTripOrHang runs tr.RoundTrip(req) and fails the test if it does not
// return.
func roundTripOrHang(t *testing.T, tr http.RoundTripper, req *http.Request) (*http.Response, error) {
	t.Helper()
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-time.After(hangGuard):
		t.Fatal("RoundTrip hangs")
		return nil, nil
	}
}

func receiveOrHang[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(hangGuard):
		t.Fatal("nothing received")
		var zero T
		return zero
	}
}

// fullDuplexServer answers before it reads the body, as a gRPC-style stream
// does: 401 with a Basic challenge when the request lacks the right
// Authorization (after reading readFirst bytes), else 200, and then it reads
// the body and reports it.
func fullDuplexServer(t *testing.T, want string, readFirst int64, bodies chan<- string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			t.Error(err)
		}
		if r.Header.Get("Authorization") != want {
			if _, err := io.CopyN(io.Discard, r.Body, readFirst); err != nil {
				t.Error(err)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="stream"`)
			w.WriteHeader(http.StatusUnauthorized)
			_ = rc.Flush()
			return
		}
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// privateBase is a Transport of the test's own, so that connections left by
// a stream are closed when the test ends.
func privateBase(t *testing.T) *http.Transport {
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	return base
}

func TestStreamingBodyIsSentAsItIsProduced(t *testing.T) {
	tests := []struct {
		name  string
		creds Credentials
		want  string
	}{
		{"Bearer: sent with the first request", Bearer(testToken), "Bearer " + testToken},
		// The first attempt meets a 401 before it has sent any of the body;
		// the retry carries all of it.
		{"Basic: challenged before the body was read", Basic(testUser, testPassword), basicValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bodies := make(chan string, 2)
			srv := fullDuplexServer(t, tt.want, 0, bodies)
			pr, pw := io.Pipe() // ends only after the response
			body := &closeCounter{Reader: pr}
			req, err := http.NewRequest("POST", srv.URL, body)
			require.NoError(t, err)
			tr := &Transport{Base: privateBase(t), Credentials: tt.creds, Origins: []string{srv.URL}}

			resp, err := roundTripOrHang(t, tr, req)
			require.NoError(t, err, "the response comes before the body has ended")
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)

			_, err = io.WriteString(pw, "produced after the response")
			require.NoError(t, err)
			require.NoError(t, pw.Close())
			assert.Equal(t, "produced after the response", receiveOrHang(t, bodies))
			require.Eventually(t, func() bool { return body.closes.Load() > 0 }, hangGuard, time.Millisecond)
			assert.Equal(t, int32(1), body.closes.Load(), "the caller's body is closed once")
		})
	}
}

func TestStreamChallengedMidwayIsReplayedAsCopyAndRest(t *testing.T) {
	// The first attempt has sent part of the body when the 401 comes; the
	// rest is still in the caller's reader. The retry sends the copy of
	// what was sent, then the rest as it is produced.
	const first, rest = "sent before the challenge, ", "produced after the response"
	bodies := make(chan string, 2)
	srv := fullDuplexServer(t, basicValue, int64(len(first)), bodies)
	pr, pw := io.Pipe()
	body := &closeCounter{Reader: pr}
	req, err := http.NewRequest("POST", srv.URL, body)
	require.NoError(t, err)
	tr := &Transport{Base: privateBase(t), Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}}
	go func() { _, _ = io.WriteString(pw, first) }()

	resp, err := roundTripOrHang(t, tr, req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = io.WriteString(pw, rest)
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	assert.Equal(t, first+rest, receiveOrHang(t, bodies))
	require.Eventually(t, func() bool { return body.closes.Load() > 0 }, hangGuard, time.Millisecond)
	assert.Equal(t, int32(1), body.closes.Load())
}

func TestStreamedBodyOverTheLimitIsNotReplayable(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.CopyN(io.Discard, r.Body, 64<<10) // a challenge after 64 KiB
		w.Header().Set("WWW-Authenticate", `Basic realm="upload"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	body := &closeCounter{Reader: endless{}}
	req, err := http.NewRequest("PUT", srv.URL, body)
	require.NoError(t, err)
	tr := &Transport{Base: privateBase(t), Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}, MaxBufferedBody: 1 << 10}

	_, err = roundTripOrHang(t, tr, req)
	require.ErrorIs(t, err, ErrUnauthorized)
	require.ErrorIs(t, err, ErrBodyNotReplayable)
	for _, fix := range []string{"GetBody", "seekable", "MaxBufferedBody"} {
		assert.ErrorContains(t, err, fix, "the error says how to make the body replayable")
	}
	assert.Equal(t, int32(1), requests.Load(), "never re-sent empty or cut short")
	require.Eventually(t, func() bool { return body.closes.Load() > 0 }, hangGuard, time.Millisecond)
	assert.Equal(t, int32(1), body.closes.Load())
}

func TestSeekableBodyIsReplayedBySeekingBack(t *testing.T) {
	content := strings.Repeat("0123456789", 1000)
	path := filepath.Join(t.TempDir(), "upload")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	f, err := os.Open(path)
	require.NoError(t, err)
	_, err = f.Seek(10, io.SeekStart) // the body starts where the file is
	require.NoError(t, err)
	body := &fileCloseCounter{File: f}

	srv := newRecorder(t, basicServer)
	req, err := http.NewRequest("POST", srv.URL, body)
	require.NoError(t, err)
	require.Nil(t, req.GetBody)
	// Far smaller than the body: seeking needs no copy.
	tr := &Transport{Base: privateBase(t), Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}, MaxBufferedBody: 100}
	resp, err := roundTripOrHang(t, tr, req)
	require.NoError(t, err)
	resp.Body.Close()
	reqs := srv.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, content[10:], reqs[0].Body)
	assert.Equal(t, content[10:], reqs[1].Body)
	require.Eventually(t, func() bool { return body.closes.Load() > 0 }, hangGuard, time.Millisecond)
	assert.Equal(t, int32(1), body.closes.Load())
}

// digestParam matches one auth-param of a Digest Authorization field.
var digestParam = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]*))`)

// authIntServer checks Digest qop=auth-int (RFC 7616 §3.4.3) on its own,
// without reauth's digest code: the body the server received must be the
// body that was hashed.
func authIntServer(t *testing.T, received chan<- string) *httptest.Server {
	h := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	const realm, nonce = "auth-int", "n0nce"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p := map[string]string{}
		for _, m := range digestParam.FindAllStringSubmatch(strings.TrimPrefix(r.Header.Get("Authorization"), "Digest "), -1) {
			p[m[1]] = m[2] + m[3]
		}
		ha1 := h(testUser + ":" + realm + ":" + testPassword)
		ha2 := h(r.Method + ":" + p["uri"] + ":" + h(string(body)))
		if p["qop"] != "auth-int" || p["response"] != h(ha1+":"+nonce+":"+p["nc"]+":"+p["cnonce"]+":auth-int:"+ha2) {
			w.Header().Set("WWW-Authenticate", `Digest realm="`+realm+`", nonce="`+nonce+`", qop="auth-int", algorithm=SHA-256`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		received <- string(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDigestAuthIntSignsAStreamedBody(t *testing.T) {
	received := make(chan string, 4)
	srv := authIntServer(t, received)
	tr := &Transport{Base: privateBase(t), Credentials: Digest(testUser, testPassword), Origins: []string{srv.URL}}
	// The first request is challenged and its body read ahead to answer;
	// the second is signed up front, before anything is sent.
	for _, payload := range []string{"first streamed body", "a second, different body"} {
		body := &closeCounter{Reader: strings.NewReader(payload)}
		req, err := http.NewRequest("POST", srv.URL+"/items", body)
		require.NoError(t, err)
		require.Nil(t, req.GetBody)
		resp, err := roundTripOrHang(t, tr, req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, payload, receiveOrHang(t, received))
		require.Eventually(t, func() bool { return body.closes.Load() > 0 }, hangGuard, time.Millisecond)
		assert.Equal(t, int32(1), body.closes.Load())
	}
}

func TestRequestBodyIsClosedOnceOnEveryPath(t *testing.T) {
	const payload = "the request body"
	bodies := []struct {
		name string
		new  func(t *testing.T) (io.Reader, func() int32)
	}{
		{"stream", func(*testing.T) (io.Reader, func() int32) {
			b := &closeCounter{Reader: strings.NewReader(payload)}
			return b, b.closes.Load
		}},
		{"seekable", func(t *testing.T) (io.Reader, func() int32) {
			path := filepath.Join(t.TempDir(), "body")
			require.NoError(t, os.WriteFile(path, []byte(payload), 0o600))
			f, err := os.Open(path)
			require.NoError(t, err)
			b := &fileCloseCounter{File: f}
			return b, b.closes.Load
		}},
		{"GetBody", nil}, // the stream's counter, with GetBody set
	}
	refusingBase := func(t *testing.T) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			t.Error("the request must not be sent")
			closeRequestBody(r)
			return nil, errors.New("sent")
		})
	}
	srv := newRecorder(t, basicServer)
	paths := []struct {
		name      string
		transport func(t *testing.T) *Transport
		url       string
		nilURL    bool
		wantErr   error
	}{
		{name: "configuration error", wantErr: ErrNoOrigins, transport: func(*testing.T) *Transport {
			return &Transport{Credentials: Bearer(testToken)}
		}},
		{name: "nil URL", nilURL: true, transport: func(*testing.T) *Transport {
			return &Transport{Credentials: Bearer(testToken), Origins: []string{srv.URL}}
		}},
		{name: "proxy function error", transport: func(t *testing.T) *Transport {
			return &Transport{Base: refusingBase(t), Credentials: Bearer(testToken), Origins: []string{srv.URL},
				ProxyCredentials: Basic("proxyuser", "proxy-pw"),
				Proxy:            func(*http.Request) (*url.URL, error) { return nil, errors.New("no proxy today") }}
		}},
		{name: "credentials error", transport: func(t *testing.T) *Transport {
			failing := credsFunc{
				authorization: func(*AuthRequest) (string, error) { return "", errors.New("token endpoint down") },
				answer:        func(*AuthRequest, *Refusal) (string, error) { return "", nil },
			}
			return &Transport{Base: refusingBase(t), Credentials: failing, Origins: []string{srv.URL}}
		}},
		{name: "malformed credentials", wantErr: ErrMalformedCredentials, transport: func(t *testing.T) *Transport {
			return &Transport{Base: refusingBase(t), Credentials: Bearer("not a token"), Origins: []string{srv.URL}}
		}},
		{name: "plain-http refusal", url: "http://api.example.com/", wantErr: ErrInsecureCredentials, transport: func(t *testing.T) *Transport {
			return &Transport{Base: refusingBase(t), Credentials: Bearer(testToken), Origins: []string{"http://api.example.com"}}
		}},
		{name: "base error", transport: func(*testing.T) *Transport {
			down := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				closeRequestBody(r) // as the RoundTripper contract says
				return nil, errors.New("network down")
			})
			return &Transport{Base: down, Credentials: Bearer(testToken), Origins: []string{srv.URL}}
		}},
		{name: "challenge, retry and success", transport: func(t *testing.T) *Transport {
			return &Transport{Base: privateBase(t), Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}}
		}},
		{name: "refused after the retry", wantErr: ErrUnauthorized, transport: func(t *testing.T) *Transport {
			return &Transport{Base: privateBase(t), Credentials: Basic(testUser, "wrong"), Origins: []string{srv.URL}}
		}},
		{name: "unbound origin", transport: func(t *testing.T) *Transport {
			return &Transport{Base: privateBase(t), Credentials: Bearer(testToken), Origins: []string{"https://elsewhere.example"}}
		}},
	}
	for _, p := range paths {
		for _, b := range bodies {
			t.Run(p.name+"/"+b.name, func(t *testing.T) {
				var r io.Reader
				var closes func() int32
				if b.new == nil {
					r, closes = bodies[0].new(t)
				} else {
					r, closes = b.new(t)
				}
				u := p.url
				if u == "" {
					u = srv.URL
				}
				req, err := http.NewRequest("POST", u, r)
				require.NoError(t, err)
				if b.new == nil {
					req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(payload)), nil }
				}
				if p.nilURL {
					req.URL = nil
				}
				resp, err := roundTripOrHang(t, p.transport(t), req)
				if p.wantErr != nil {
					assert.ErrorIs(t, err, p.wantErr)
				}
				if resp != nil {
					resp.Body.Close()
				}
				require.Eventually(t, func() bool { return closes() > 0 }, hangGuard, time.Millisecond)
				assert.Equal(t, int32(1), closes(), "the caller's body is closed exactly once")
			})
		}
	}
}

func TestRequestBodyReadAheadHonoursTheContext(t *testing.T) {
	// Digest auth-int must read the whole body before the first send: a body
	// that never ends holds the request only until its context ends.
	srv := authIntServer(t, make(chan string, 1))
	tr := &Transport{Base: privateBase(t), Credentials: Digest(testUser, testPassword), Origins: []string{srv.URL}}
	resp, err := roundTripOrHang(t, tr, mustRequest(t, context.Background(), srv.URL, strings.NewReader("learn the challenge")))
	require.NoError(t, err)
	resp.Body.Close()

	pr, pw := io.Pipe()
	defer pw.Close()
	body := &closeCounter{Reader: pr}
	ctx, cancel := context.WithCancel(context.Background())
	req := mustRequest(t, ctx, srv.URL, body)
	time.AfterFunc(10*time.Millisecond, cancel)
	_, err = roundTripOrHang(t, tr, req)
	require.ErrorIs(t, err, context.Canceled)
	require.Eventually(t, func() bool { return body.closes.Load() > 0 }, hangGuard, time.Millisecond)
	assert.Equal(t, int32(1), body.closes.Load())
}

func mustRequest(t *testing.T, ctx context.Context, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url, body)
	require.NoError(t, err)
	return req
}

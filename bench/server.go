package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Fixed credentials of the loopback server. They are test values on
// 127.0.0.1, not secrets.
const (
	benchUser     = "alice"
	benchPassword = "bench-password"
	benchToken    = "bench-token-0123456789"
	benchClientID = "bench-client"
	benchSecret   = "bench-client-secret"
)

// digestChallenge is what /digest answers a request without credentials
// with: the form of RFC 7616 §3.9.1, SHA-256.
const digestChallenge = `Digest realm="bench@127.0.0.1", qop="auth", algorithm=SHA-256, ` +
	`nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`

// loopServer is the server of sections 1 and 6: as cheap as a server can
// be, so that what differs between two runs is the client. A path that
// names a scheme answers a request without credentials of that scheme
// with 401 and a challenge, and accepts any credentials of the scheme: the
// client's cost is measured here, not the server's check (section 3
// checks credentials for real, against the mock server).
//
//	/open     200 to anything
//	/basic    Basic realm="bench"
//	/bearer   Bearer realm="bench"
//	/digest   the Digest challenge above
//	/token    an OAuth2 token endpoint (client credentials grant)
//
// Every request body is read to its end before the answer, as a server
// that checks a body would, so that an upload is sent whole.
type loopServer struct {
	srv        *http.Server
	url        string
	requests   atomic.Int64 // requests answered, every path
	challenges atomic.Int64 // 401s sent
	tokens     atomic.Int64 // tokens issued by /token
}

func startLoopServer() (*loopServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &loopServer{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *loopServer) close() { _ = s.srv.Close() }

var okBody = []byte("ok\n")

func (s *loopServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	auth := r.Header.Get("Authorization")
	switch r.URL.Path {
	case "/open":
	case "/basic":
		if !strings.HasPrefix(auth, "Basic ") {
			s.challenge(w, `Basic realm="bench"`)
			return
		}
	case "/bearer":
		if auth != "Bearer "+benchToken {
			s.challenge(w, `Bearer realm="bench"`)
			return
		}
	case "/digest":
		if !strings.HasPrefix(auth, "Digest ") {
			s.challenge(w, digestChallenge)
			return
		}
	case "/token":
		s.tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, benchToken)
		return
	default:
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h["Content-Length"] = []string{"3"}
	h["Content-Type"] = []string{"text/plain"}
	_, _ = w.Write(okBody)
}

func (s *loopServer) challenge(w http.ResponseWriter, ch string) {
	s.challenges.Add(1)
	w.Header().Set("WWW-Authenticate", ch)
	w.WriteHeader(http.StatusUnauthorized)
}

// newBase returns the http.Transport every client of a comparison sends
// through: the same settings for all, with room to keep a connection per
// concurrent client alive.
func newBase() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     2 * time.Minute,
	}
}

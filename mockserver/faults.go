package mockserver

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Faults a test switches on at run time: a failing or slow token endpoint,
// a token endpoint that hands back a refused token, and the 429/503
// scenarios that refuse a number of requests before one succeeds.

// TokenEndpointFailure makes the token endpoints (/oauth2/token and
// /registry/token) misbehave, for fault tests. The zero value turns it off.
type TokenEndpointFailure struct {
	// Status, when non-zero, is sent instead of serving the request, with
	// the body {"error":"server_error"}.
	Status int
	// Delay holds each answer back this long (real time, not the Clock).
	// It ends early when the client goes away or the server closes.
	Delay time.Duration
	// Times is how many requests the failure applies to; 0 means every
	// request until it is changed.
	Times int
}

// SetTokenEndpointFailure sets (or with the zero value clears) the failure
// the token endpoints apply from the next request on.
func (s *Server) SetTokenEndpointFailure(f TokenEndpointFailure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFailure = f
}

// SetTokenReplay makes /oauth2/token answer every grant with the last access
// token it issued to the same client, even one revoked or expired: a token
// source whose cache hands back the token that was just refused.
func (s *Server) SetTokenReplay(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenReplay = on
}

// TokenGrants returns how many tokens /oauth2/token has issued.
func (s *Server) TokenGrants() int { return int(s.tokenGrants.Load()) }

// applyTokenFailure applies the configured failure to one token request. It
// reports whether it answered the request.
func (s *Server) applyTokenFailure(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := s.tokenFailure
	if f.Times > 0 {
		s.tokenFailure.Times--
		if s.tokenFailure.Times == 0 {
			s.tokenFailure = TokenEndpointFailure{}
		}
	}
	s.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The client gave up: nothing is granted to nobody, so that
			// TokenGrants counts only tokens a client could have received.
			t.Stop()
			return true
		case <-s.done:
			t.Stop()
			return true
		}
	}
	if f.Status == 0 {
		return false
	}
	noStore(w)
	writeJSON(w, f.Status, map[string]string{"error": "server_error", "error_description": "failure set by SetTokenEndpointFailure"})
	return true
}

// serveStatus is /status/429/ and /status/503/: Config.Status.FailFirst refusals in
// a row with Retry-After (RFC 9110 §10.2.3, RFC 6585 §4), then one 200.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	status := http.StatusTooManyRequests
	key := "/status/429/"
	if strings.HasPrefix(r.URL.Path, "/status/503/") {
		status, key = http.StatusServiceUnavailable, "/status/503/"
	}
	s.mu.Lock()
	fail := s.failFirst < 0 || s.failCount[key] < s.failFirst
	if fail {
		s.failCount[key]++
	} else {
		s.failCount[key] = 0
	}
	s.mu.Unlock()
	if !fail {
		writeOK(w, okInfo{Scenario: "status", Path: r.URL.Path})
		return
	}
	if s.cfg.Status.RetryAfterDate {
		w.Header().Set("Retry-After", s.clock.Now().Add(s.cfg.Status.RetryAfter).UTC().Format(http.TimeFormat))
	} else {
		w.Header().Set("Retry-After", strconv.FormatInt(lifetimeSeconds(s.cfg.Status.RetryAfter), 10))
	}
	writeText(w, status, http.StatusText(status)+": retry later")
}

// SetFailFirst changes Config.Status.FailFirst at run time and starts the counts of
// /status/429/ and /status/503/ again.
func (s *Server) SetFailFirst(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failFirst = n
	clear(s.failCount)
}

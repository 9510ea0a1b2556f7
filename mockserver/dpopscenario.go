package mockserver

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// dpopNonces are the server's current DPoP nonces (RFC 9449 §8, §9): one
// for its token endpoint and one for its resources, as an authorization
// server and a resource server each have their own. A nonce is current
// for Config.DPoP.NonceLifetime; only the current one is accepted.
type dpopNonces struct {
	mu  sync.Mutex
	cur map[string]dpopNonce // "token" or "resource" → nonce
}

type dpopNonce struct {
	value  string
	issued time.Time
}

// dpopNonce returns the current nonce for kind ("token", "resource"),
// rotating it first when its lifetime is over.
func (s *Server) dpopNonce(kind string) string {
	n := &s.dpopNonces
	n.mu.Lock()
	defer n.mu.Unlock()
	now := s.clock.Now()
	c, ok := n.cur[kind]
	if lt := s.cfg.DPoP.NonceLifetime; !ok || (lt > 0 && now.Sub(c.issued) >= lt) {
		b := make([]byte, 18)
		rand.Read(b)
		c = dpopNonce{value: base64.RawURLEncoding.EncodeToString(b), issued: now}
		if n.cur == nil {
			n.cur = map[string]dpopNonce{}
		}
		n.cur[kind] = c
	}
	return c.value
}

// RotateDPoPNonces makes the server's DPoP nonces change now: a proof with
// the nonce it handed out last is answered use_dpop_nonce and a new one.
func (s *Server) RotateDPoPNonces() {
	s.dpopNonces.mu.Lock()
	s.dpopNonces.cur = nil
	s.dpopNonces.mu.Unlock()
}

// dpopNonceRequired reports whether the scenario of path requires nonces:
// those under /dpop/nonce/.
func dpopNonceRequired(path string) bool { return strings.HasPrefix(path, "/dpop/nonce/") }

// serveDPoPToken is /dpop/token and /dpop/nonce/token: the grants of
// /oauth2/token, each request with a DPoP proof (RFC 9449 §5), issuing
// access tokens bound to the proof's key, token_type DPoP. Under
// /dpop/nonce/ the proof must carry the endpoint's current nonce; else
// 400 use_dpop_nonce with a DPoP-Nonce field (§8). The proof is checked
// before the client is authenticated, so that a request refused for its
// nonce alone uses up no client assertion (its jti) and may be resent
// with a new proof as it was.
func (s *Server) serveDPoPToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeOAuthError(w, oauthFail(http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST (RFC 6749 §3.2)"))
		return
	}
	form, e := parseTokenForm(r)
	if e == nil {
		if _, p := readAuthorization(r); p != nil {
			e = oauthFail(http.StatusBadRequest, "invalid_request", p.msg)
		}
	}
	if e != nil {
		s.writeOAuthError(w, e)
		return
	}
	want := dpopCheck{method: r.Method, url: requestURL(r)}
	if dpopNonceRequired(r.URL.Path) {
		want.nonce = s.dpopNonce("token")
	}
	jkt, f := s.verifyDPoP(r, want)
	if f != nil {
		if f.code == "use_dpop_nonce" {
			w.Header().Set("DPoP-Nonce", want.nonce)
		}
		noStore(w)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": f.code, "error_description": f.desc})
		return
	}
	client, e := s.authenticateClient(r, form)
	if e == nil {
		e = s.grant(w, form, client, tokenBinding{jkt: jkt, nonce: want.nonce})
	}
	if e != nil {
		if want.nonce != "" {
			w.Header().Set("DPoP-Nonce", want.nonce)
		}
		s.writeOAuthError(w, e)
	}
}

// serveDPoPResource is /dpop/resource and /dpop/nonce/resource: it takes
// Authorization: DPoP <token> with a DPoP proof for this request (ath of
// the token, the key the token is bound to), RFC 9449 §7. Refusals are
// 401 with a DPoP challenge: no DPoP credentials, the bare challenge;
// invalid_token for a token that is unknown, expired, revoked or bound to
// another key; invalid_dpop_proof; under /dpop/nonce/, use_dpop_nonce and
// a DPoP-Nonce field when the proof lacks the current nonce.
func (s *Server) serveDPoPResource(w http.ResponseWriter, r *http.Request) {
	realm := s.Realm("dpop")
	c, p := readAuthorization(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	if c == nil || !c.Is("DPoP") {
		writeDPoPError(w, realm, http.StatusUnauthorized, "", "DPoP credentials required")
		return
	}
	if c.Token68 == "" {
		writeDPoPError(w, realm, http.StatusBadRequest, "invalid_request", "DPoP credentials carry a token (RFC 9449 §7.1)")
		return
	}
	now := s.clock.Now()
	t, ok := s.tokens.live(c.Token68, accessToken, audienceDPoP, now)
	if !ok {
		writeDPoPError(w, realm, http.StatusUnauthorized, "invalid_token", "the access token is unknown, expired or revoked")
		return
	}
	want := dpopCheck{method: r.Method, url: requestURL(r), token: c.Token68}
	if dpopNonceRequired(r.URL.Path) {
		want.nonce = s.dpopNonce("resource")
	}
	jkt, f := s.verifyDPoP(r, want)
	switch {
	case f != nil:
		if f.code == "use_dpop_nonce" {
			w.Header().Set("DPoP-Nonce", want.nonce)
		}
		writeDPoPError(w, realm, http.StatusUnauthorized, f.code, f.desc)
		return
	case jkt != t.jkt:
		writeDPoPError(w, realm, http.StatusUnauthorized, "invalid_token", "the access token is bound to another key (cnf.jkt, RFC 9449 §6)")
		return
	}
	if want.nonce != "" {
		w.Header().Set("DPoP-Nonce", want.nonce)
	}
	writeOK(w, okInfo{Scenario: "dpop", Path: r.URL.Path, Client: t.client, User: t.user, Scopes: t.scopes, JKT: t.jkt})
}

// writeDPoPError answers with a DPoP challenge (RFC 9449 §7.1): algs, and
// error and error_description when there is an error code.
func writeDPoPError(w http.ResponseWriter, realm string, status int, code, desc string) {
	ch := "DPoP realm=" + quote(realm)
	if code != "" {
		ch += ", error=" + quote(code) + ", error_description=" + quote(desc)
	}
	w.Header().Set("WWW-Authenticate", ch+", algs="+quote(dpopAlgs))
	if code == "" {
		writeText(w, status, desc)
		return
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// dpopTokenScenarios and dpopResourceScenarios list the DPoP scenarios of
// [scenarioTable].
func (s *Server) dpopTokenScenarios() []Scenario {
	const does = "POST form with a DPoP proof (htm POST, htu this URL, no ath): the grants of /oauth2/token, client authenticated by secret or private_key_jwt (Config.OAuth2.ClientKeys); access tokens bound to the proof's key (cnf.jkt), token_type DPoP; a bad proof: 400 invalid_dpop_proof; jti replays refused"
	client := "client as for /oauth2/token, or client_assertion (RFC 7523 §2.2: iss = sub = client_id, aud this URL, exp, jti); DPoP proof (" + dpopAlgs + ")"
	return []Scenario{
		{"dpop", "/dpop/token", "oauth2/token", client, does},
		{"dpop", "/dpop/nonce/token", "oauth2/token", client, does + "; the proof must carry this endpoint's nonce: else 400 {\"error\":\"use_dpop_nonce\"} with DPoP-Nonce; nonces rotate (Config.DPoP.NonceLifetime)"},
	}
}

func (s *Server) dpopResourceScenarios() []Scenario {
	ch := "DPoP realm=" + quote(s.Realm("dpop")) + ", algs=" + quote(dpopAlgs)
	does := "Authorization: DPoP <token of /dpop/…/token> and a DPoP proof (htm, htu, ath, the token's key): 200; unknown, expired, revoked or bound to another key: 401 error=\"invalid_token\"; a bad or replayed proof: 401 error=\"invalid_dpop_proof\""
	return []Scenario{
		{"dpop", "/dpop/resource", "dpop", ch, does},
		{"dpop", "/dpop/nonce/resource", "dpop", ch, does + "; the proof must carry the resource's nonce: else 401 error=\"use_dpop_nonce\" with DPoP-Nonce; 200s carry DPoP-Nonce too; nonces rotate (Config.DPoP.NonceLifetime)"},
	}
}

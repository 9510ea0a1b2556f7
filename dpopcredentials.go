package reauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ErrInvalidDPoPProof: a resource server or token endpoint refused the DPoP
// proof itself (error="invalid_dpop_proof", RFC 9449 §7.1, §5): a wrong key
// or algorithm, a client the server does not allow DPoP, a clock too far
// off. Another proof from the same key would be refused the same way, so
// the request is not retried. errors.Is matches it in the
// [*UnauthorizedError] of a resource's refusal and in the [*TokenError] of
// a token endpoint's.
var ErrInvalidDPoPProof = errors.New("reauth: the server refused the DPoP proof (error=\"invalid_dpop_proof\", RFC 9449 §7.1)")

// errInvalidDPoPProof is the reason a resource's invalid_dpop_proof is
// final: a decline, so that the caller gets an *UnauthorizedError.
var errInvalidDPoPProof = errorf(`reauth: the resource server refused the DPoP proof (error="invalid_dpop_proof", RFC 9449 §7.1); another proof from the same key will not help (%w; %w)`, ErrInvalidDPoPProof, ErrNoCredentials)

// errNoDPoPNonce is the reason a use_dpop_nonce refusal without a usable
// DPoP-Nonce field is final.
var errNoDPoPNonce = errorf(`reauth: the resource server asks for a DPoP nonce (error="use_dpop_nonce") but sent no valid DPoP-Nonce field (RFC 9449 §9) (%w)`, ErrNoCredentials)

// maxDPoPOrigins bounds the resource nonces remembered: one per origin. A
// Transport talks to the few origins of its Origins list.
const maxDPoPOrigins = 256

// nonceMemory remembers the last DPoP-Nonce per key (an origin, a token
// endpoint), at most max of them: when full, a new key starts afresh, and
// a forgotten nonce costs one use_dpop_nonce retry.
type nonceMemory[K comparable] struct {
	mu  sync.Mutex
	m   map[K]string
	max int
}

func (n *nonceMemory[K]) get(k K) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[k]
}

func (n *nonceMemory[K]) put(k K, nonce string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.m[k]; n.m == nil || (!ok && len(n.m) >= n.max) {
		n.m = make(map[K]string)
	}
	n.m[k] = nonce
}

// signTokenRequests makes the token requests of c carry a DPoP proof (with
// OAuth2Options.DPoP) and a client assertion for clientID in place of its
// secret (with OAuth2Options.ClientKey). One token transport per
// credentials, so that it keeps the token endpoint's nonce.
func (c *oauth2Credentials) signTokenRequests(clientID string) {
	if c.opts.DPoP == nil && c.opts.ClientKey == nil {
		return
	}
	c.signer = &tokenTransport{dpop: c.opts.DPoP, now: c.now}
	if c.opts.ClientKey != nil {
		c.signer.client = &clientKey{key: c.opts.ClientKey, keyID: c.opts.ClientKeyID, clientID: clientID}
	}
}

// signed returns hc with its token requests signed (see signTokenRequests),
// or hc when there is nothing to sign.
func (c *oauth2Credentials) signed(hc *http.Client) *http.Client {
	if c.signer == nil {
		return hc
	}
	out := *hc
	out.Transport = tokenTransportOver{c.signer, hc.Transport}
	return &out
}

// clientCredentialsConfig returns cfg as ClientCredentials sends it: with
// OAuth2Options.ClientKey, a copy whose client authentication goes in the
// form (where the assertion replaces it) and without a secret.
func (c *oauth2Credentials) clientCredentialsConfig(cfg *clientcredentials.Config) *clientcredentials.Config {
	c.signTokenRequests(cfg.ClientID)
	if c.opts.ClientKey == nil {
		return cfg
	}
	cp := *cfg
	cp.ClientSecret, cp.AuthStyle = "", oauth2.AuthStyleInParams
	return &cp
}

// refreshConfig is clientCredentialsConfig for RefreshToken.
func (c *oauth2Credentials) refreshConfig(cfg *oauth2.Config) *oauth2.Config {
	c.signTokenRequests(cfg.ClientID)
	if c.opts.ClientKey == nil {
		return cfg
	}
	cp := *cfg
	cp.ClientSecret, cp.Endpoint.AuthStyle = "", oauth2.AuthStyleInParams
	return &cp
}

// credentials returns c as the Transport uses it: c itself, or with
// OAuth2Options.DPoP the DPoP credentials over it.
func (c *oauth2Credentials) credentials() Credentials {
	if c.opts.DPoP == nil {
		return c
	}
	return &dpopCredentials{c: c, nonces: nonceMemory[Origin]{max: maxDPoPOrigins}}
}

// tokenValue returns the Authorization field value for tok: "DPoP <token>"
// for a DPoP-bound token, which only credentials with OAuth2Options.DPoP
// can send; "Bearer <token>" for a Bearer token, which credentials with
// OAuth2Options.DPoP send only with OAuth2Options.AllowBearerWithDPoP.
func (c *oauth2Credentials) tokenValue(tok *oauth2.Token) (string, error) {
	switch {
	case tok != nil && equalFoldASCII(tok.TokenType, "DPoP"):
		if c.opts.DPoP == nil {
			return "", unusableToken("reauth: the token endpoint issued a token of type \"DPoP\", bound to a key (RFC 9449 §5); set OAuth2Options.DPoP to that key to send it")
		}
		b := *tok
		b.TokenType = "Bearer"
		v, err := bearerValue(&b)
		if err != nil {
			return "", err
		}
		return "DPoP " + strings.TrimPrefix(v, "Bearer "), nil
	case tok != nil && c.opts.DPoP != nil && !c.opts.AllowBearerWithDPoP && (tok.TokenType == "" || equalFoldASCII(tok.TokenType, "Bearer")):
		return "", unusableToken("reauth: OAuth2Options.DPoP is set but the token endpoint issued a Bearer token, usable by anyone who holds it (RFC 9449 §5); allow DPoP for this client at the server, or set OAuth2Options.AllowBearerWithDPoP to accept Bearer tokens")
	}
	return bearerValue(tok)
}

// dpopCredentials send the tokens of OAuth2 credentials with OAuth2Options.DPoP
// as DPoP-bound tokens (RFC 9449 §7): "Authorization: DPoP <token>" and a
// fresh proof on every attempt, with the nonce last seen from the origin.
type dpopCredentials struct {
	c      *oauth2Credentials
	nonces nonceMemory[Origin] // the last DPoP-Nonce of each origin
}

// String describes d without its token or key.
func (d *dpopCredentials) String() string   { return "reauth.OAuth2(DPoP, redacted)" }
func (d *dpopCredentials) GoString() string { return d.String() }

// Authorize sends the token Refused chose for this request, else the cached
// one, with a new proof: htm and htu of the attempt, ath of the token, the
// origin's nonce when one is known.
func (d *dpopCredentials) Authorize(r *AuthRequest) error {
	if r.Proxy() != nil {
		return fmt.Errorf("%w: OAuth2 credentials with DPoP answer origins, not proxies (RFC 9449 proofs are for resource servers); use them as Transport.Credentials", ErrConfig)
	}
	v, _ := r.State.(string)
	if v == "" {
		var err error
		if v, err = d.c.value(r); err != nil || v == "" {
			return err
		}
	}
	r.Set(r.Field(), v)
	tok, bound := strings.CutPrefix(v, "DPoP ")
	if !bound {
		return nil // a Bearer token, with OAuth2Options.AllowBearerWithDPoP
	}
	req := r.Request()
	htu, err := dpopTargetURI(req.URL.String())
	if err != nil {
		return fmt.Errorf("reauth: DPoP proof: the request URL %v", err)
	}
	proof, err := dpopProofAt(d.c.opts.DPoP, req.Method, htu, tok, d.nonces.get(r.Origin()), d.c.now())
	if err != nil {
		return err
	}
	r.SetProof("DPoP", proof)
	return nil
}

// Refused answers a DPoP challenge (RFC 9449 §7.1): use_dpop_nonce with a
// DPoP-Nonce field is retried with the same token and a proof carrying the
// nonce (RetryNonce); invalid_dpop_proof is final; invalid_token, or no
// error code, replaces the refused token once as for Bearer. A refusal
// without a DPoP challenge is answered as OAuth2 credentials answer it.
func (d *dpopCredentials) Refused(r *AuthRequest, ref *Refusal) (Retry, error) {
	d.remember(r, ref.Header)
	ch, ok := erringChallenge(ref.Challenges, "DPoP")
	if !ok {
		return d.c.Refused(r, ref)
	}
	sent := r.Request().Header.Get(r.Field())
	switch ch.Param("error") {
	case "use_dpop_nonce":
		if n := ref.Header.Get("DPoP-Nonce"); n == "" || !isDPoPNonce(n) {
			return 0, errNoDPoPNonce
		}
		r.State = sent
		return RetryNonce, nil // the ceiling refuses a second one
	case "invalid_dpop_proof":
		return 0, errInvalidDPoPProof
	case "invalid_request":
		return 0, errMalformedRequest
	case "insufficient_scope":
		return 0, errInsufficientScope
	}
	if ref.Allowed&RetryChallenge == 0 {
		return RetryChallenge, nil // the ceiling refuses it; fetch nothing
	}
	var v string
	var err error
	switch ch.Param("error") {
	case errInsufficientUserAuthentication, errInsufficientClaims:
		v, err = d.c.stepUp(r, sent, ch)
	default:
		v, err = d.c.replace(r, sent, true)
	}
	if err != nil || v == "" {
		return 0, err
	}
	r.State = v
	return RetryChallenge, nil
}

// Observe remembers the origin's DPoP-Nonce from the response, 200s
// included (RFC 9449 §8.2), so that the next request carries it at once.
func (d *dpopCredentials) Observe(r *AuthRequest, resp *http.Response) error {
	d.remember(r, resp.Header)
	return nil
}

func (d *dpopCredentials) remember(r *AuthRequest, h http.Header) {
	if n := h.Get("DPoP-Nonce"); n != "" && isDPoPNonce(n) {
		d.nonces.put(r.Origin(), n)
	}
}

// String describes o without its keys, hooks or client: a formatted
// OAuth2Options must not print a private key (an ed25519.PrivateKey is a
// byte slice).
func (o OAuth2Options) String() string {
	var b strings.Builder
	b.WriteString("reauth.OAuth2Options{")
	fmt.Fprintf(&b, "Skew: %v, FetchTimeout: %v", o.Skew, o.FetchTimeout)
	if o.DPoP != nil {
		b.WriteString(", DPoP: (key)")
	}
	if o.AllowBearerWithDPoP {
		b.WriteString(", AllowBearerWithDPoP: true")
	}
	if o.ClientKey != nil {
		fmt.Fprintf(&b, ", ClientKey: (key), ClientKeyID: %q", o.ClientKeyID)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"StepUp", o.StepUp != nil}, {"OnToken", o.OnToken != nil}, {"HTTPClient", o.HTTPClient != nil}, {"Now", o.Now != nil}} {
		if f.set {
			b.WriteString(", " + f.name + ": (set)")
		}
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, for %#v.
func (o OAuth2Options) GoString() string { return o.String() }

package reauth

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxTokenRequestBody bounds the body of a token request the token
// transport buffers to sign and to resend: token requests are a few form
// fields.
const maxTokenRequestBody = 64 << 10

// maxTokenErrorBody bounds how much of a 400 from a token endpoint is read
// to see whether it asks for a DPoP nonce; an OAuth error response is a
// small JSON object (RFC 6749 §5.2).
const maxTokenErrorBody = 16 << 10

// maxTokenEndpointNonces bounds the nonces remembered: one per token
// endpoint, and a client talks to a few.
const maxTokenEndpointNonces = 32

// tokenTransport sends the token requests of OAuth2 credentials that use
// DPoP (RFC 9449 §5) or private_key_jwt (RFC 7523 §2.2). It sits below
// x/oauth2 (the Transport of the client passed as the oauth2.HTTPClient
// context value): x/oauth2 builds the token request, and tokenTransport
// adds to each one what must be fresh per request, which x/oauth2's
// AuthStyle and EndpointParams cannot give (they are fixed per Config):
//
//   - with dpop set, a DPoP proof without ath, carrying the nonce last
//     seen from that token endpoint;
//   - with client set, a new client assertion in place of any
//     client_secret in the form (and of a Basic Authorization field);
//     configure x/oauth2 with AuthStyleInParams and no secret.
//
// A 400 whose JSON error is use_dpop_nonce and which carries a DPoP-Nonce
// field (RFC 9449 §8) is sent again once, with that nonce, a new proof and
// a new assertion (a server refuses a jti it has seen); never a second
// time, whatever the second answer. The DPoP-Nonce of every response is
// remembered per token endpoint, so that later requests carry it at once.
//
// RoundTrip reads the request body (at most maxTokenRequestBody bytes) and
// closes it; it does not change the request. tokenTransport is safe for
// concurrent use.
type tokenTransport struct {
	base   http.RoundTripper // nil: http.DefaultTransport
	dpop   crypto.Signer     // nil: no proofs
	client *clientKey        // nil: the form's own client authentication
	now    func() time.Time  // nil: time.Now

	mu     sync.Mutex
	nonces map[string]string // htu of the token endpoint → its last DPoP-Nonce
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, t.baseRT())
}

// tokenTransportOver is a tokenTransport over another base, sharing its
// nonce memory: OAuth2 credentials keep one tokenTransport and send through
// the base of the request that fetches.
type tokenTransportOver struct {
	t    *tokenTransport
	base http.RoundTripper // nil: http.DefaultTransport
}

func (o tokenTransportOver) RoundTrip(req *http.Request) (*http.Response, error) {
	base := o.base
	if base == nil {
		base = http.DefaultTransport
	}
	return o.t.roundTrip(req, base)
}

// String describes o without its keys (see tokenTransport.String).
func (o tokenTransportOver) String() string { return o.t.String() }

// GoString is String, for %#v.
func (o tokenTransportOver) GoString() string { return o.t.String() }

func (t *tokenTransport) roundTrip(req *http.Request, base http.RoundTripper) (*http.Response, error) {
	body, err := readTokenRequestBody(req)
	if err != nil {
		return nil, err
	}
	htu, err := dpopTargetURI(req.URL.String())
	if err != nil {
		return nil, fmt.Errorf("reauth: token request: the token endpoint URL %v", err)
	}
	var form url.Values
	if t.client != nil {
		if form, err = url.ParseQuery(string(body)); err != nil {
			return nil, errors.New("reauth: token request: the body is not a form (application/x-www-form-urlencoded); a client assertion goes into one")
		}
	}
	nonce := t.nonce(htu)
	for attempt := 1; ; attempt++ {
		out, err := t.prepare(req, body, form, htu, nonce)
		if err != nil {
			return nil, err
		}
		resp, err := base.RoundTrip(out)
		if err != nil {
			return nil, err
		}
		got := resp.Header.Get("DPoP-Nonce")
		if got != "" && isDPoPNonce(got) {
			t.remember(htu, got)
		}
		if attempt > 1 || t.dpop == nil || resp.StatusCode != http.StatusBadRequest || got == "" || got == nonce || !isDPoPNonce(got) {
			return resp, nil
		}
		ask, resp, err := asksForDPoPNonce(resp)
		if err != nil || !ask {
			return resp, err
		}
		resp.Body.Close()
		nonce = got
	}
}

// String describes t without its keys (see clientKey.String).
func (t *tokenTransport) String() string {
	s := "reauth token transport"
	if t.dpop != nil {
		s += " with DPoP"
	}
	if t.client != nil {
		s += " for " + t.client.String()
	}
	return s
}

// GoString is String, for %#v.
func (t *tokenTransport) GoString() string { return t.String() }

func (t *tokenTransport) baseRT() http.RoundTripper {
	if t.base != nil {
		return t.base
	}
	return http.DefaultTransport
}

// prepare returns the request for one attempt: a copy of req with the
// body (and a new assertion in it), a new proof with nonce.
func (t *tokenTransport) prepare(req *http.Request, body []byte, form url.Values, htu, nonce string) (*http.Request, error) {
	now := time.Now
	if t.now != nil {
		now = t.now
	}
	out := req.Clone(req.Context())
	if t.client != nil {
		if err := t.client.authenticate(form, htu, now()); err != nil {
			return nil, err
		}
		body = []byte(form.Encode())
		if v := out.Header.Get("Authorization"); len(v) >= 6 && strings.EqualFold(v[:6], "basic ") {
			out.Header.Del("Authorization")
		}
	}
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	if t.dpop != nil {
		proof, err := dpopProofAt(t.dpop, req.Method, htu, "", nonce, now())
		if err != nil {
			return nil, err
		}
		out.Header.Set("DPoP", proof)
	}
	return out, nil
}

// readTokenRequestBody reads and closes req's body, at most
// maxTokenRequestBody bytes.
func readTokenRequestBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(io.LimitReader(req.Body, maxTokenRequestBody+1))
	if err != nil {
		return nil, fmt.Errorf("reauth: token request: reading its body: %w", err)
	}
	if len(b) > maxTokenRequestBody {
		return nil, fmt.Errorf("reauth: token request: the body is larger than %d KiB; token requests are a few form fields", maxTokenRequestBody>>10)
	}
	return b, nil
}

// asksForDPoPNonce reports whether resp, a 400, is the use_dpop_nonce
// error (RFC 9449 §8). It reads at most maxTokenErrorBody bytes of the
// body and returns a response whose body reads as the original would.
func asksForDPoPNonce(resp *http.Response) (bool, *http.Response, error) {
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenErrorBody))
	if err != nil {
		resp.Body.Close()
		return false, nil, fmt.Errorf("reauth: token request: reading the 400 answer: %w", err)
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(head, &e) != nil {
		return false, resp, nil
	}
	return e.Error == "use_dpop_nonce", resp, nil
}

func (t *tokenTransport) nonce(htu string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nonces[htu]
}

func (t *tokenTransport) remember(htu, nonce string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nonces == nil || (len(t.nonces) >= maxTokenEndpointNonces && t.nonces[htu] == "") {
		t.nonces = make(map[string]string)
	}
	t.nonces[htu] = nonce
}

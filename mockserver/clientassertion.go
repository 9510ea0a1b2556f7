package mockserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// jwtBearerAssertion is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime is how far in the future an assertion's exp may be:
// an assertion is for one request, so its life is short.
const maxAssertionLifetime = 10 * time.Minute

// assertionLeeway is the clock skew allowed on exp, nbf and iat.
const assertionLeeway = time.Minute

// checkClientKey refuses keys the server cannot verify assertions with.
func checkClientKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return errors.New("an ECDSA key must be on P-256 (ES256)")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return errors.New("an Ed25519 key is 32 bytes")
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return errors.New("an RSA key needs at least 2048 bits")
		}
	default:
		return fmt.Errorf("%T is not an *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey", k)
	}
	return nil
}

// assertionAlgs returns the algs a key verifies.
func assertionAlgs(k crypto.PublicKey) []string {
	switch k.(type) {
	case *ecdsa.PublicKey:
		return []string{"ES256"}
	case ed25519.PublicKey:
		return []string{"EdDSA"}
	default:
		return []string{"RS256", "PS256"}
	}
}

// authenticateAssertion authenticates the client by private_key_jwt: a JWT
// signed with the client's key (RFC 7523 §2.2, §3): iss and sub the
// client_id, aud the token endpoint's URL, exp in the near future, a jti
// not seen before. Every refusal is invalid_client (RFC 7523 §3.2).
func (s *Server) authenticateAssertion(r *http.Request, form url.Values) (string, *oauthError) {
	fail := func(format string, args ...any) (string, *oauthError) {
		return "", oauthFail(http.StatusUnauthorized, "invalid_client", "client assertion: "+fmt.Sprintf(format, args...))
	}
	if got := form.Get("client_assertion_type"); got != jwtBearerAssertion {
		return fail("client_assertion_type must be %s", jwtBearerAssertion)
	}
	t, err := parseJWT(form.Get("client_assertion"))
	if err != nil {
		return fail("%v", err)
	}
	iss, _ := str(t.claims, "iss")
	key, ok := s.cfg.OAuth2.ClientKeys[iss]
	if !ok {
		return fail("iss names no client with a registered key")
	}
	if sub, _ := str(t.claims, "sub"); sub != iss {
		return fail("sub must be the client_id, as iss is (RFC 7523 §3)")
	}
	if id := form.Get("client_id"); id != "" && id != iss {
		return fail("client_id differs from the assertion's iss")
	}
	alg, _ := str(t.header, "alg")
	algOK := false
	for _, a := range assertionAlgs(key) {
		algOK = algOK || a == alg
	}
	if !algOK {
		return fail("alg %s does not fit the client's key (want one of %v)", printable(alg), assertionAlgs(key))
	}
	if err := verifySignature(alg, key, t.signingInput, t.signature); err != nil {
		return fail("%v", err)
	}
	if !audienceHas(t.claims["aud"], requestURL(r), origin(r)+r.URL.Path) {
		return fail("aud must be the token endpoint's URL %s", origin(r)+r.URL.Path)
	}
	now := s.clock.Now()
	exp, ok := numericDate(t.claims, "exp")
	switch {
	case !ok:
		return fail("exp is missing or not a NumericDate")
	case !exp.Add(assertionLeeway).After(now):
		return fail("it expired")
	case exp.After(now.Add(maxAssertionLifetime + assertionLeeway)):
		return fail("exp is more than %v away; an assertion is for one request", maxAssertionLifetime)
	}
	if nbf, ok := numericDate(t.claims, "nbf"); ok && nbf.After(now.Add(assertionLeeway)) {
		return fail("it is not valid yet (nbf)")
	}
	if _, has := t.claims["iat"]; has {
		if iat, ok := numericDate(t.claims, "iat"); !ok || iat.After(now.Add(assertionLeeway)) {
			return fail("iat is not a NumericDate in the past")
		}
	}
	jti, ok := str(t.claims, "jti")
	if !ok || jti == "" || len(jti) > 256 {
		return fail("jti must be a string of 1 to 256 characters")
	}
	if err := s.assertionJTIs.use(iss+" "+jti, exp.Add(assertionLeeway), now); err != nil {
		return fail("%v", err)
	}
	return iss, nil
}

// audienceHas reports whether aud, a string or an array of strings
// (RFC 7519 §4.1.3), holds one of urls.
func audienceHas(aud json.RawMessage, urls ...string) bool {
	var list []string
	var one string
	if json.Unmarshal(aud, &one) == nil && len(aud) > 0 && aud[0] == '"' {
		list = []string{one}
	} else if json.Unmarshal(aud, &list) != nil {
		return false
	}
	for _, a := range list {
		for _, u := range urls {
			if a == u {
				return true
			}
		}
	}
	return false
}

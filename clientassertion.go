package reauth

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// clientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertionLifetime is how long a client assertion is valid: it is
// made for one token request and sent at once, so a minute covers the
// request and a modest clock difference, and little more (RFC 7523 §3:
// servers may refuse assertions with an exp far in the future).
const clientAssertionLifetime = 60 * time.Second

// clientKey authenticates a client with private_key_jwt (RFC 7523 §2.2):
// a fresh signed assertion per token request, in place of a secret.
type clientKey struct {
	key      crypto.Signer
	keyID    string // "kid" header; "" for none
	clientID string // iss and sub
}

// String describes c without its key: a formatted clientKey must not print
// an Ed25519 private key, which is a byte slice.
func (c clientKey) String() string {
	return fmt.Sprintf("private_key_jwt client %q (kid %q)", c.clientID, c.keyID)
}

// GoString is String, for %#v.
func (c clientKey) GoString() string { return c.String() }

// assertion returns a client assertion for a request to the token endpoint
// tokenURL (RFC 7523 §3): iss = sub = the client ID, aud the token
// endpoint, a unique jti, iat now and exp a minute later.
func (c *clientKey) assertion(tokenURL string, now time.Time) (string, error) {
	if c.key == nil {
		return "", errors.New("reauth: client assertion: the client key is nil")
	}
	if c.clientID == "" {
		return "", errors.New("reauth: client assertion: the client ID is empty; private_key_jwt needs it as iss and sub")
	}
	aud, err := dpopTargetURI(tokenURL)
	if err != nil {
		return "", fmt.Errorf("reauth: client assertion: the token endpoint URL %v", err)
	}
	jk, err := cachedDPoPKey(c.key)
	if err != nil {
		return "", err
	}
	header := make([]byte, 0, 32+len(c.keyID))
	header = append(header, `{"alg":"`...)
	header = append(header, jk.alg...)
	header = append(header, '"')
	if c.keyID != "" {
		header = append(header, `,"kid":`...)
		header = appendJSONString(header, c.keyID)
	}
	header = append(header, `,"typ":"JWT"}`...)

	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("reauth: client assertion: reading random bytes for jti: %w", err)
	}
	claims := make([]byte, 0, 128+2*len(c.clientID)+len(aud))
	claims = append(claims, `{"iss":`...)
	claims = appendJSONString(claims, c.clientID)
	claims = append(claims, `,"sub":`...)
	claims = appendJSONString(claims, c.clientID)
	claims = append(claims, `,"aud":`...)
	claims = appendJSONString(claims, aud)
	claims = append(claims, `,"jti":"`...)
	claims = base64.RawURLEncoding.AppendEncode(claims, jti[:])
	claims = append(claims, `","iat":`...)
	claims = strconv.AppendInt(claims, now.Unix(), 10)
	claims = append(claims, `,"exp":`...)
	claims = strconv.AppendInt(claims, now.Add(clientAssertionLifetime).Unix(), 10)
	claims = append(claims, '}')
	return jk.sign(c.key, base64.RawURLEncoding.EncodeToString(header), claims)
}

// authenticate puts a fresh assertion into the form of a token request to
// tokenURL in place of any client secret (RFC 7521 §4.2): a client uses
// one authentication method per request (RFC 6749 §2.3).
func (c *clientKey) authenticate(form url.Values, tokenURL string, now time.Time) error {
	a, err := c.assertion(tokenURL, now)
	if err != nil {
		return err
	}
	form.Del("client_secret")
	form.Set("client_id", c.clientID)
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", a)
	return nil
}

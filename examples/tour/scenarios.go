package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// scenario is one row of the tour: a request to one of the mock server's
// scenarios, the credentials reauth is given, and what the status table
// says must come of it (DESIGN.md, status table).
type scenario struct {
	// variant tells the row from others on the same path ("wrong password");
	// "" for the plain one.
	variant string
	method  string // "" is GET
	path    string // requested on the mock server; its requests are counted under this prefix
	body    string // request body, sent with GetBody as http.NewRequest sets it
	// creds builds the Transport's credentials. Nil means reauth does not
	// have them yet: the row is listed as not yet supported, needing needs.
	creds    func(e *env) (reauth.Credentials, error)
	needs    string
	retrying bool                         // through reauth.NewClient instead of http.Client
	before   func(e *env, call int) error // runs before each call
	want     expect
	shows    string // what the row shows, in a few words
}

// The users, tokens and clients of mockserver.DefaultConfig. They are the
// mock's published test credentials; the table never prints them.
const (
	alice, alicePassword = "alice", "wonderland" // an admin
	bob, bobPassword     = "bob", "builder"      // a valid user who is not an admin
	readToken            = "mock-token-read"     // static Bearer token, scope read
	oauth2Client         = "reauth-client"
	oauth2Secret         = "reauth-secret"
)

// label names the row: method, path, variant, and how the calls are made.
func (sc scenario) label() string {
	s := sc.path
	if sc.method != "" && sc.method != http.MethodGet {
		s = sc.method + " " + s
	}
	if sc.variant != "" {
		s += " " + sc.variant
	}
	if sc.body != "" {
		s += " +body"
	}
	if n := len(sc.want.requests); n > 1 {
		s += fmt.Sprintf(" x%d", n)
	}
	if sc.retrying {
		s += " via NewClient"
	}
	return s
}

func scenarios() []scenario {
	defaults := mockserver.DefaultConfig()
	digestOK := func(alg string) expect {
		return succeeds(http.StatusOK, 2, 1).and(all(digestAnswered(alg, "auth"), digestNote("nonce reused")))
	}
	list := []scenario{
		{path: "/basic/", creds: basic(alice, alicePassword),
			want:  succeeds(http.StatusOK, 2, 1),
			shows: "Basic once challenged, then up front"},
		{variant: "wrong password", path: "/basic/", creds: basic(alice, "not-the-password"),
			want:  fails(2, reauth.ErrUnauthorized, reauth.ErrRefusedAfterRetry),
			shows: "refused after the challenge retry: final, no loop"},

		{path: "/bearer/", creds: bearer(readToken),
			want:  succeeds(http.StatusOK, 1, 1),
			shows: "a token goes with the first request"},
		{variant: "unknown token", path: "/bearer/", creds: bearer("mock-token-unknown"),
			want: fails(1, reauth.ErrUnauthorized, reauth.ErrNoCredentials).
				and(bearerErrorIs("error", func(b reauth.BearerError) string { return b.Code }, "invalid_token")),
			shows: "a static token has nothing new: no retry"},
		{variant: "with read token", path: "/bearer/admin", creds: bearer(readToken),
			want: fails(1, reauth.ErrForbidden).
				and(bearerErrorIs("scope", func(b reauth.BearerError) string { return b.Scope }, "admin")),
			shows: "403 final; the missing scope surfaced"},
		{variant: "malformed credentials", path: "/bearer/", creds: malformedBearer,
			want: fails(1, reauth.ErrInvalidRequest).
				and(bearerErrorIs("error", func(b reauth.BearerError) string { return b.Code }, "invalid_request")),
			shows: "400 invalid_request is final (hand-made credentials)"},

		{path: "/digest/", creds: digest(alice, alicePassword),
			want:  succeeds(http.StatusOK, 2, 1).and(all(digestAnsweredStrongest("auth"), digestNote("nonce reused"))),
			shows: "the strongest algorithm offered is chosen"},
		{path: "/digest/strongest/", creds: digest(alice, alicePassword),
			want:  digestOK("SHA-512-256"),
			shows: "SHA-512-256 chosen over SHA-256 and MD5"},
		{path: "/digest/md5/", creds: digest(alice, alicePassword),
			want: digestOK("MD5"), shows: "MD5, kept for old servers"},
		{path: "/digest/md5-sess/", creds: digest(alice, alicePassword),
			want: digestOK("MD5-sess"), shows: "-sess: HA1 bound to the nonce"},
		{path: "/digest/sha-256/", creds: digest(alice, alicePassword),
			want: digestOK("SHA-256"), shows: "SHA-256"},
		{path: "/digest/sha-256-sess/", creds: digest(alice, alicePassword),
			want: digestOK("SHA-256-sess"), shows: "SHA-256-sess"},
		{path: "/digest/sha-512-256/", creds: digest(alice, alicePassword),
			want: digestOK("SHA-512-256"), shows: "SHA-512/256 of FIPS 180-4"},
		{path: "/digest/sha-512-256-sess/", creds: digest(alice, alicePassword),
			want: digestOK("SHA-512-256-sess"), shows: "SHA-512-256-sess"},
		{method: http.MethodPost, path: "/digest/auth-int/", body: `{"hello":"digest"}`,
			creds: digest(alice, alicePassword),
			want:  succeeds(http.StatusOK, 2, 1).and(all(digestAnswered("SHA-256", "auth-int"), sameBody)),
			shows: "the body is hashed, and resent intact"},
		{path: "/digest/userhash/", creds: digest(alice, alicePassword),
			want:  succeeds(http.StatusOK, 2, 1).and(digestNote("userhash")),
			shows: "the user name goes hashed"},
		{path: "/digest/stale/", creds: digest(alice, alicePassword),
			want:  succeeds(http.StatusOK, 2, 2).and(digestNote("stale nonce replaced")),
			shows: "stale=true: the new nonce, in the fresh-nonce retry"},
		{path: "/digest/nextnonce/", creds: digest(alice, alicePassword),
			want:  succeeds(http.StatusOK, 2, 1).and(digestNote("nextnonce adopted")),
			shows: "Authentication-Info nextnonce is used"},
		{path: "/digest/bad-rspauth/", creds: digest(alice, alicePassword),
			want:  fails(2, reauth.ErrDigestRspauth),
			shows: "a server that cannot prove the password"},
	}
	list = append(list, tokenScenarios()...)
	list = append(list,
		scenario{variant: "as bob", path: "/forbidden/", creds: basic(bob, bobPassword),
			want:  fails(2, reauth.ErrForbidden),
			shows: "403 is final: never retried"},
		scenario{variant: "as bob", path: "/hidden/", creds: basic(bob, bobPassword),
			want:  succeeds(http.StatusNotFound, 2),
			shows: "404 passes through: not an auth failure"},
		scenario{variant: "as bob", path: "/apache/", creds: basic(bob, bobPassword),
			want:  fails(2, reauth.ErrUnauthorized, reauth.ErrRefusedAfterRetry),
			shows: "valid user refused again: final after the retry"},
		scenario{path: "/no-challenge/", creds: basic(alice, alicePassword),
			want:  fails(1, reauth.ErrUnauthorized, reauth.ErrNoCredentials).and(noChallenges),
			shows: "nothing asks for Basic: none is sent"},
		scenario{variant: "Preemptive", path: "/no-challenge/",
			creds: func(*env) (reauth.Credentials, error) {
				return reauth.Preemptive(reauth.Basic(alice, alicePassword)), nil
			},
			want:  succeeds(http.StatusOK, 1),
			shows: "Preemptive(Basic) for such APIs"},
	)
	for _, m := range malformedKinds {
		want := fails(1, reauth.ErrUnauthorized, reauth.ErrNoCredentials).and(challengesMalformed(m.parseError))
		if m.answerable {
			want = succeeds(http.StatusOK, 2)
		}
		list = append(list, scenario{path: "/malformed/" + m.kind + "/",
			creds: basic(alice, alicePassword), want: want, shows: m.shows})
	}
	list = append(list,
		scenario{path: "/stepup/", creds: oauth2TokenAsBearer,
			want: fails(1, reauth.ErrUnauthorized, reauth.ErrNoCredentials).
				and(bearerErrorIs("acr_values", func(b reauth.BearerError) string { return b.ACRValues }, defaults.StepUp.ACR)),
			shows: "RFC 9470: the acr asked for is surfaced"},
		scenario{variant: "token too old", path: "/stepup/max-age/", creds: oauth2TokenAsBearer,
			before: func(e *env, _ int) error {
				e.clock.Advance(e.cfg.StepUp.MaxAge + time.Second) // the token's authentication is now too old
				return nil
			},
			want: fails(1, reauth.ErrUnauthorized, reauth.ErrNoCredentials).
				and(bearerErrorIs("max_age", func(b reauth.BearerError) string { return b.MaxAge }, strconv.Itoa(int(defaults.StepUp.MaxAge.Seconds())))),
			shows: "RFC 9470: max_age is surfaced"},
		scenario{path: "/dpop/resource", creds: dpopClientCredentials("/dpop/token"),
			want:  succeeds(http.StatusOK, 1, 1),
			shows: "a DPoP-bound token, a fresh proof per request"},
		scenario{path: "/dpop/nonce/resource", creds: dpopClientCredentials("/dpop/nonce/token"),
			want:  succeeds(http.StatusOK, 2, 1),
			shows: "use_dpop_nonce: same token, new proof; then 1"},
		scenario{path: "/status/429/", creds: basic(alice, alicePassword), retrying: true,
			want:  succeeds(http.StatusOK, 2).and(retryAfterHonoured),
			shows: "NewClient waits as asked, then succeeds"},
		scenario{path: "/status/503/", creds: basic(alice, alicePassword), retrying: true,
			want:  succeeds(http.StatusOK, 2).and(retryAfterHonoured),
			shows: "the same for 503"},
	)
	return list
}

// malformedKinds are the broken challenges of /malformed/<kind>/, with
// what RFC 9110 §11 makes of them: a field that does not parse gives no
// challenge to answer, so reauth gives up with the parse error; a challenge
// that parses is answered.
var malformedKinds = []struct {
	kind       string
	parseError bool // the field breaks the grammar
	answerable bool // a well-formed Basic challenge remains
	shows      string
}{
	{kind: "unterminated", parseError: true, shows: "quoted-string never ends: typed error"},
	{kind: "no-equals", parseError: true, shows: "an auth-param without '=': typed error"},
	{kind: "token68-param", parseError: true, shows: "token68 then auth-param: typed error"},
	{kind: "duplicate-param", parseError: true, shows: "a parameter twice (§11.2): typed error"},
	{kind: "bad-char", parseError: true, shows: "a character outside the grammar"},
	{kind: "empty", shows: "an empty field: no challenge"},
	{kind: "huge", parseError: true, shows: "100 KiB: refused unparsed, bounded"},
	{kind: "unsupported", shows: "an unknown scheme is not guessed at"},
	{kind: "mixed", parseError: true, answerable: true, shows: "the good line is still answered"},
}

func basic(user, password string) func(*env) (reauth.Credentials, error) {
	return func(*env) (reauth.Credentials, error) { return reauth.Basic(user, password), nil }
}

func bearer(token string) func(*env) (reauth.Credentials, error) {
	return func(*env) (reauth.Credentials, error) { return reauth.Bearer(token), nil }
}

func digest(user, password string) func(*env) (reauth.Credentials, error) {
	return func(*env) (reauth.Credentials, error) { return reauth.Digest(user, password), nil }
}

// malformedBearer sends Bearer credentials with auth-params instead of a
// token. reauth.Bearer refuses to build those, so this is hand-made, to see
// what the Transport does with the server's 400 error="invalid_request".
func malformedBearer(*env) (reauth.Credentials, error) {
	return fixedCredentials(`Bearer token="mock-token-read"`), nil
}

// fixedCredentials sends one value up front and has nothing else to offer.
type fixedCredentials string

func (f fixedCredentials) Authorize(r *reauth.AuthRequest) error {
	r.Set(r.Field(), string(f))
	return nil
}

func (fixedCredentials) Refused(*reauth.AuthRequest, *reauth.Refusal) (reauth.Retry, error) {
	return 0, nil
}

func (fixedCredentials) Observe(*reauth.AuthRequest, *http.Response) error { return nil }

// oauth2TokenAsBearer gets an access token from the mock's token endpoint
// (client_credentials, no acr) and uses it as a static Bearer token: /stepup/
// takes only the mock's OAuth2 tokens, so a static token of /bearer/ would
// get invalid_token, not the step-up challenge.
func oauth2TokenAsBearer(e *env) (reauth.Credentials, error) {
	cc := clientcredentials.Config{ClientID: oauth2Client, ClientSecret: oauth2Secret, TokenURL: e.url + "/oauth2/token"}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: e.conns})
	tok, err := cc.Token(ctx)
	if err != nil {
		return nil, err
	}
	return reauth.Bearer(tok.AccessToken), nil
}

// revokeBeforeSecondCall revokes every token the mock has issued before the
// second call, so that the token held is refused with 401 invalid_token.
func revokeBeforeSecondCall(e *env, call int) error {
	if call == 1 {
		e.srv.RevokeAll()
	}
	return nil
}

package mockserver

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Config is everything about a [Server] that is not code: users, realms,
// tokens and the rules the scenarios apply. Start from [DefaultConfig] and
// change what a test needs. A zero duration or count means "off" (no expiry,
// no limit, no failures) unless a field says otherwise.
type Config struct {
	// Addr is the address Start listens on; "" means 127.0.0.1:0, a free
	// loopback port.
	Addr string
	// AllowRemote lets Start listen on an address that is not loopback.
	AllowRemote bool
	// Clock measures token expiry, nonce lifetime and step-up max_age; nil
	// means the system clock. Tests pass a [*ManualClock].
	Clock Clock
	// MaxHeaderBytes bounds a request's header section (net/http answers 431
	// past it); 0 means 64 KiB.
	MaxHeaderBytes int

	// Users maps user name to password. Basic, Digest, the OAuth2 password
	// grant and the registry token endpoint all check against it.
	Users map[string]string
	// Admins are the users that /forbidden/, /hidden/ and /apache/ let
	// through; every other user is authenticated there but not authorised.
	Admins []string
	// Realms overrides the realm of a scenario, keyed by [Scenario.RealmKey]
	// ("basic", "digest/sha-256", …). A key without an entry gets the realm
	// "<key>@reauth.mock", so every scenario is its own protection space.
	Realms map[string]string

	// Bearer is /bearer/ (see [BearerConfig]).
	Bearer BearerConfig
	// OAuth2 is /oauth2/token, /oauth2/revoke and the resources that take
	// its tokens (see [OAuth2Config]).
	OAuth2 OAuth2Config
	// Digest is /digest/… and the proxy's Digest (see [DigestConfig]).
	Digest DigestConfig
	// Registry is /v2/ and /registry/token (see [RegistryConfig]).
	Registry RegistryConfig
	// StepUp is /stepup/ (see [StepUpConfig]).
	StepUp StepUpConfig
	// DPoP is /dpop/… (see [DPoPConfig]).
	DPoP DPoPConfig
	// Status is /status/429/ and /status/503/ (see [StatusConfig]).
	Status StatusConfig
	// Proxy makes the server a forward proxy too, on the same listener
	// (see [ProxyConfig]).
	Proxy ProxyConfig
}

// BearerConfig configures /bearer/.
type BearerConfig struct {
	// Tokens maps each static token of /bearer/ to its scopes.
	Tokens map[string][]string
}

// OAuth2Config configures the OAuth2 token endpoint and its resources.
type OAuth2Config struct {
	// Clients maps OAuth2 client_id to client_secret (RFC 6749 §2.3.1).
	Clients map[string]string
	// Scopes are the scopes /oauth2/token grants; asking for another gives
	// invalid_scope.
	Scopes []string
	// AccessTokenLifetime is the expires_in of OAuth2 access tokens.
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime is how long an OAuth2 refresh token is good for.
	RefreshTokenLifetime time.Duration
	// ClientCredentialsRefresh makes the client_credentials grant return a
	// refresh token too. RFC 6749 §4.4.3 says it SHOULD NOT; a test of the
	// refresh path needs one.
	ClientCredentialsRefresh bool
	// RotateRefreshTokens makes the refresh_token grant return a new refresh
	// token and invalidate the one used (RFC 6749 §6, RFC 9700 §4.14.2).
	RotateRefreshTokens bool
	// ClientKeys maps client_id to the public key (*ecdsa.PublicKey on
	// P-256, ed25519.PublicKey or *rsa.PublicKey of at least 2048 bits) its
	// private_key_jwt client assertions must verify with (RFC 7523 §2.2,
	// OpenID Connect Core §9). A client listed here may authenticate with
	// an assertion at /oauth2/token and /dpop/…/token; one also in Clients
	// may use its secret instead.
	ClientKeys map[string]crypto.PublicKey
}

// DPoPConfig configures the DPoP scenarios (RFC 9449) under /dpop/.
type DPoPConfig struct {
	// NonceLifetime is how long a DPoP-Nonce the server hands out stays
	// current. After it the next request gets a new one (a proof with the
	// old one is answered use_dpop_nonce); 0 means a nonce changes only by
	// [Server.RotateDPoPNonces].
	NonceLifetime time.Duration
	// ProofWindow is how far a proof's iat may be from the server's clock,
	// either way; 0 means one minute. A proof's jti is remembered for as
	// long (replays are refused).
	ProofWindow time.Duration
}

// DigestConfig configures the Digest scenarios (RFC 7616) and the proxy's
// Digest challenge.
type DigestConfig struct {
	// Algorithms are the algorithms /digest/ and the proxy offer, one
	// challenge each, in this order (strongest first, RFC 7616 §3.7). Empty
	// means SHA-256, MD5, which common clients answer correctly (curl before
	// 8.7 answers SHA-512-256 with a SHA-256 digest); /digest/strongest/ and
	// /digest/sha-512-256/ offer SHA-512-256.
	Algorithms []string
	// NonceLifetime is how long a nonce is good for; after it the server
	// answers a correct response with stale=true (RFC 7616 §3.3).
	NonceLifetime time.Duration
	// NonceMaxUses is how many requests one nonce may authenticate before
	// it is stale.
	NonceMaxUses int
	// NextNonce makes Authentication-Info carry a nextnonce.
	NextNonce bool
	// WrongRspauth makes Authentication-Info carry a wrong rspauth, to test
	// a client's check of the server (RFC 7616 §3.5).
	WrongRspauth bool
	// StrictNonceCount requires every nc to be greater than any seen for
	// its nonce. Otherwise any nc not seen before is accepted, however
	// late, so that concurrent requests sharing a nonce may arrive out of
	// order; a repeated nc is refused either way (Server.DigestReplays).
	StrictNonceCount bool
}

// RegistryConfig configures the Docker/OCI registry (/v2/) and its token
// realm (/registry/token).
type RegistryConfig struct {
	// Service is the service of the token realm; "" means
	// "registry.reauth.mock".
	Service string
	// Repos are the repositories under /v2/ and who may pull and push them.
	Repos map[string]RepoAccess
	// TokenLifetime is the expires_in of registry tokens.
	TokenLifetime time.Duration
	// TokenPOST is the status a POST to /registry/token gets, so that a
	// client's fallback to GET can be tested (404 or 405); 0 serves the
	// OAuth2-style POST.
	TokenPOST int
}

// StepUpConfig configures /stepup/ (RFC 9470).
type StepUpConfig struct {
	// ACR is the acr /stepup/ requires; "" means "urn:reauth:mock:mfa".
	ACR string
	// MaxAge is the max_age /stepup/max-age/ requires.
	MaxAge time.Duration
}

// StatusConfig configures /status/429/ and /status/503/.
type StatusConfig struct {
	// FailFirst is how many requests in a row they refuse before one
	// succeeds; the count then starts again. Negative means they never
	// succeed.
	FailFirst int
	// RetryAfter is the delay their Retry-After field asks for.
	RetryAfter time.Duration
	// RetryAfterDate sends Retry-After as an HTTP-date on the server's
	// Clock instead of delay-seconds (RFC 9110 §10.2.3).
	RetryAfterDate bool
}

// RepoAccess says who may pull and push one registry repository. A user name
// "*" stands for every authenticated user.
type RepoAccess struct {
	Public bool     // anyone may pull, also without credentials
	Pull   []string // users who may pull
	Push   []string // users who may push
}

// DefaultConfig returns the configuration the command and the tour use.
//
// Users: alice/wonderland (an admin), bob/builder, and "Jäsøn Doe"/"Secret,
// or not?" (the non-ASCII user of RFC 7616 §3.9.2). Bearer tokens:
// "mock-token-read" (scope read) and "mock-token-admin" (read admin). OAuth2
// client: reauth-client/reauth-secret. Registry: library/hello (public pull,
// alice pushes) and team/app (alice and bob pull, alice pushes).
func DefaultConfig() Config {
	return Config{
		Users: map[string]string{
			"alice":     "wonderland",
			"bob":       "builder",
			"Jäsøn Doe": "Secret, or not?",
		},
		Admins: []string{"alice"},
		Bearer: BearerConfig{Tokens: map[string][]string{
			"mock-token-read":  {"read"},
			"mock-token-admin": {"read", "admin"},
		}},
		OAuth2: OAuth2Config{
			Clients:                  map[string]string{"reauth-client": "reauth-secret"},
			Scopes:                   []string{"read", "write", "admin"},
			AccessTokenLifetime:      time.Hour,
			RefreshTokenLifetime:     24 * time.Hour,
			ClientCredentialsRefresh: true,
			RotateRefreshTokens:      true,
		},
		Digest: DigestConfig{Algorithms: []string{"SHA-256", "MD5"}, NonceLifetime: 5 * time.Minute},
		Registry: RegistryConfig{
			Service: "registry.reauth.mock",
			Repos: map[string]RepoAccess{
				"library/hello": {Public: true, Pull: []string{"*"}, Push: []string{"alice"}},
				"team/app":      {Pull: []string{"alice", "bob"}, Push: []string{"alice"}},
			},
			TokenLifetime: 5 * time.Minute,
		},
		StepUp: StepUpConfig{ACR: "urn:reauth:mock:mfa", MaxAge: 5 * time.Minute},
		DPoP:   DPoPConfig{NonceLifetime: 5 * time.Minute, ProofWindow: time.Minute},
		Status: StatusConfig{FailFirst: 2, RetryAfter: time.Second},
	}
}

// Server is the mock authentication server. Its methods are safe for
// concurrent use.
type Server struct {
	cfg            Config
	clock          Clock
	fingerprintKey []byte
	mux            http.Handler // the scenarios; see routes
	log            requestLog
	tokens         tokenStore
	nonces         nonceStore

	mu             sync.Mutex // guards the runtime settings below
	tokenFailure   TokenEndpointFailure
	tokenReplay    bool
	lastAccess     map[string]string // client_id → last access token issued
	failFirst      int
	failCount      map[string]int // path → refusals in a row
	tokenGrants    atomic.Int64
	registryGrants atomic.Int64
	proxy          proxyState
	dpopJTIs       *replayStore // DPoP proof jtis
	assertionJTIs  *replayStore // client assertion jtis
	dpopNonces     dpopNonces

	httpSrv   *http.Server
	url       string
	done      chan struct{}
	closeOnce sync.Once
}

// New starts a Server on a free loopback port, like httptest.NewServer. It
// panics if cfg is invalid or it cannot listen; [NewUnstarted] and
// [Server.Start] return those as errors instead.
func New(cfg Config) *Server {
	s, err := NewUnstarted(cfg)
	if err == nil {
		err = s.Start()
	}
	if err != nil {
		panic("mockserver: " + err.Error())
	}
	return s
}

// NewUnstarted returns a Server that does not listen yet: call
// [Server.Start], or mount [Server.Handler] in a server of your own.
func NewUnstarted(cfg Config) (*Server, error) {
	cfg = cloneConfig(cfg)
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:            cfg,
		clock:          cfg.Clock,
		fingerprintKey: make([]byte, 32),
		lastAccess:     map[string]string{},
		failFirst:      cfg.Status.FailFirst,
		failCount:      map[string]int{},
		done:           make(chan struct{}),
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	rand.Read(s.fingerprintKey)
	s.tokens.m = map[string]*issuedToken{}
	s.nonces.m = map[string]*nonceState{}
	s.dpopJTIs, s.assertionJTIs = newReplayStore(), newReplayStore()
	s.mux = s.routes()
	if cfg.Proxy.Enabled {
		s.initProxy()
	}
	return s, nil
}

// Start listens on Config.Addr (default 127.0.0.1:0) and serves in the
// background. It refuses an address that is not loopback unless
// Config.AllowRemote is set.
func (s *Server) Start() error {
	if s.httpSrv != nil {
		return errors.New("server already started")
	}
	addr := s.cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if !s.cfg.AllowRemote && !IsLoopback(addr) {
		return fmt.Errorf("address %q is not loopback; set AllowRemote to listen on it", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.url = "http://" + l.Addr().String()
	s.httpSrv = &http.Server{
		Handler:           s,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go s.httpSrv.Serve(l)
	return nil
}

// URL returns the base URL of a started Server, "http://127.0.0.1:port",
// without a trailing slash: srv.URL()+"/basic/" reaches the Basic scenario.
func (s *Server) URL() string { return s.url }

// Handler returns the Server as an http.Handler, request log included.
func (s *Server) Handler() http.Handler { return s }

// Clock returns the clock the server measures time on.
func (s *Server) Clock() Clock { return s.clock }

// Close stops the server: it ends any delay set by
// [Server.SetTokenEndpointFailure] and every proxy tunnel, and waits (up to
// five seconds) for requests in progress to finish.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		defer s.closeProxy()
		if s.httpSrv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s.httpSrv.Shutdown(ctx) != nil {
			s.httpSrv.Close()
		}
	})
}

// IsLoopback reports whether the host of addr ("host:port") is a loopback IP
// address or "localhost". An empty host means every interface: not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Realm returns the realm of the scenario with the given [Scenario.RealmKey].
func (s *Server) Realm(key string) string {
	if r, ok := s.cfg.Realms[key]; ok {
		return r
	}
	return key + "@reauth.mock"
}

func (s *Server) isAdmin(user string) bool { return slices.Contains(s.cfg.Admins, user) }

func cloneConfig(cfg Config) Config {
	cfg.Users = maps.Clone(cfg.Users)
	cfg.Admins = slices.Clone(cfg.Admins)
	cfg.Realms = maps.Clone(cfg.Realms)
	cfg.Bearer.Tokens = maps.Clone(cfg.Bearer.Tokens)
	for k, v := range cfg.Bearer.Tokens {
		cfg.Bearer.Tokens[k] = slices.Clone(v)
	}
	cfg.OAuth2.Clients = maps.Clone(cfg.OAuth2.Clients)
	cfg.OAuth2.ClientKeys = maps.Clone(cfg.OAuth2.ClientKeys)
	cfg.OAuth2.Scopes = slices.Clone(cfg.OAuth2.Scopes)
	cfg.Digest.Algorithms = slices.Clone(cfg.Digest.Algorithms)
	cfg.Proxy.Schemes = slices.Clone(cfg.Proxy.Schemes)
	cfg.Registry.Repos = maps.Clone(cfg.Registry.Repos)
	for k, v := range cfg.Registry.Repos {
		cfg.Registry.Repos[k] = RepoAccess{Public: v.Public, Pull: slices.Clone(v.Pull), Push: slices.Clone(v.Push)}
	}
	return cfg
}

// validate fills the defaults that have no "off" meaning and refuses values
// the scenarios could not serve.
func validate(cfg *Config) error {
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	if len(cfg.Digest.Algorithms) == 0 {
		cfg.Digest.Algorithms = []string{"SHA-256", "MD5"}
	}
	if cfg.Registry.Service == "" {
		cfg.Registry.Service = "registry.reauth.mock"
	}
	if cfg.DPoP.ProofWindow <= 0 {
		cfg.DPoP.ProofWindow = time.Minute
	}
	for id, k := range cfg.OAuth2.ClientKeys {
		if err := checkClientKey(k); err != nil {
			return fmt.Errorf("config: OAuth2.ClientKeys[%q]: %v", id, err)
		}
	}
	if cfg.StepUp.ACR == "" {
		cfg.StepUp.ACR = "urn:reauth:mock:mfa"
	}
	for _, a := range cfg.Digest.Algorithms {
		if _, ok := findDigestAlgorithm(a); !ok {
			return fmt.Errorf("config: Digest.Algorithms: unknown algorithm %q", a)
		}
	}
	for user, password := range cfg.Users {
		if user == "" || strings.Contains(user, ":") || !fieldSafe(user) {
			return fmt.Errorf("config: Users: user name %q is empty, has a ':' or a control character (RFC 7617 §2)", user)
		}
		if !utf8.ValidString(password) {
			return fmt.Errorf("config: Users: password of %q is not UTF-8", user)
		}
	}
	for key, realm := range cfg.Realms {
		if !fieldSafe(realm) {
			return fmt.Errorf("config: Realms[%q]: realm has a control character or is not UTF-8", key)
		}
	}
	for _, v := range []string{cfg.Registry.Service, cfg.StepUp.ACR} {
		if !fieldSafe(v) {
			return fmt.Errorf("config: %q has a control character or is not UTF-8", v)
		}
	}
	if len(cfg.Proxy.Schemes) == 0 {
		cfg.Proxy.Schemes = []string{"Basic"}
	}
	for i, scheme := range cfg.Proxy.Schemes {
		switch {
		case strings.EqualFold(scheme, "Basic"):
			cfg.Proxy.Schemes[i] = "Basic"
		case strings.EqualFold(scheme, "Digest"):
			cfg.Proxy.Schemes[i] = "Digest"
		default:
			return fmt.Errorf("config: Proxy.Schemes: %q is not Basic or Digest", scheme)
		}
	}
	if p := cfg.Registry.TokenPOST; p != 0 && (p < 400 || p > 599) {
		return fmt.Errorf("config: Registry.TokenPOST: %d is not a 4xx or 5xx status", p)
	}
	return nil
}

// fieldSafe reports whether v can go into a header field value inside a
// quoted-string: UTF-8 without control characters.
func fieldSafe(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

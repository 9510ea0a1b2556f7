//go:build integration

package negotiate

// New's credentials driven by a real reauth.Transport against the servers
// of scripts/kerberos.sh: Apache with mod_auth_gssapi on
// http://localhost:PORT and squid with negotiate_kerberos_auth on
// http://127.0.0.1:PORT. Requests are counted at the dialler (one request a
// connection, CONNECTs included).

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"

	"github.com/reauth/reauth"
)

func transportGet(t *testing.T, tr http.RoundTripper, u string) (*http.Response, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a hang guard
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", u, err)
	}
	return resp, string(b), nil
}

// webTransport is a reauth.Transport for Apache, counting requests at c.
func webTransport(r *realm, c *counting, creds reauth.Credentials) *reauth.Transport {
	return &reauth.Transport{Base: c.Transport, Credentials: creds, Origins: []string{r.web.String()}}
}

// 200 in two requests, then the measured requests per call: two again by
// default, one with PreemptiveAfterChallenge; mutual authentication
// required and verified on every 200.
func TestIntegrationTransportRequestsPerCall(t *testing.T) {
	r := newRealm(t)
	for _, tc := range []struct {
		name  string
		cl    *client.Client
		opts  []Option
		later int32
	}{
		{"keytab", r.keytabClient(t, r.user, r.keytab), nil, 2},
		{"keytab, PreemptiveAfterChallenge", r.keytabClient(t, r.user, r.keytab), []Option{PreemptiveAfterChallenge()}, 1},
		{"password, PreemptiveAfterChallenge", r.passwordClient(t, r.password), []Option{PreemptiveAfterChallenge()}, 1},
		{"ccache, PreemptiveAfterChallenge", r.ccacheClient(t), []Option{PreemptiveAfterChallenge()}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCounting(t, nil, nil, nil)
			tr := webTransport(r, c, NewWithOptions(tc.cl, append([]Option{RequireMutualAuthentication()}, tc.opts...)...))
			u := r.web.JoinPath("/negotiate/").String()
			var counts []int32
			for call := range 3 {
				before := c.sent.Load()
				resp, body, err := transportGet(t, tr, u)
				if err != nil || resp.StatusCode != http.StatusOK || body != "ok negotiate\n" {
					t.Fatalf("call %d: %v", call+1, err)
				}
				n := c.sent.Load() - before
				counts = append(counts, n)
				want := tc.later
				if call == 0 {
					want = 2
				}
				if n != want {
					t.Errorf("call %d: %d requests, want %d", call+1, n, want)
				}
			}
			t.Logf("requests per call (%s): %v", tc.name, counts)
		})
	}
}

// The KDC refuses (a keytab whose key it replaced, a principal it deleted,
// a wrong password, a service principal it does not know): a final error
// matching ErrKDCRefused after the one challenge, no token sent, no loop.
// A ticket the server cannot read (squid's principal sent to Apache): the
// token is refused and the request ends after two requests.
func TestIntegrationTransportWrongCredentials(t *testing.T) {
	r := newRealm(t)
	u := r.web.JoinPath("/negotiate/").String()
	kdc := []struct {
		name string
		cl   *client.Client
		opts []Option
	}{
		{"stale keytab", r.keytabClient(t, "stale", r.stale), nil},
		{"deleted principal", r.keytabClient(t, "ghost", r.ghost), nil},
		{"wrong password", r.passwordClient(t, "not-"+r.password), nil},
		{"unknown service principal", r.keytabClient(t, r.user, r.keytab),
			[]Option{WithSPN(func(string) string { return "HTTP/nosuch.localhost" })}},
	}
	for _, tc := range kdc {
		t.Run(tc.name, func(t *testing.T) {
			c := newCounting(t, nil, nil, nil)
			resp, _, err := transportGet(t, webTransport(r, c, NewWithOptions(tc.cl, tc.opts...)), u)
			if resp != nil || !errors.Is(err, ErrKDCRefused) || !errors.Is(err, reauth.ErrFinal) {
				t.Fatalf("err = %v, want a final error matching ErrKDCRefused", err)
			}
			if n := c.sent.Load(); n != 1 {
				t.Errorf("%d requests, want 1 (the challenge)", n)
			}
			if msg := err.Error(); strings.Contains(msg, r.password) || strings.Count(msg, "reauth: ") != 1 {
				t.Errorf("error %q: a password, or not one prefix", msg)
			}
		})
	}
	t.Run("ticket for another service", func(t *testing.T) {
		c := newCounting(t, nil, nil, nil)
		creds := NewWithOptions(r.keytabClient(t, r.user, r.keytab), WithSPN(func(string) string { return "HTTP/127.0.0.1" }))
		resp, _, err := transportGet(t, webTransport(r, c, creds), u)
		var ue *reauth.UnauthorizedError
		if resp != nil || !errors.As(err, &ue) || !errors.Is(err, reauth.ErrFinal) {
			t.Fatalf("err = %v, want a final *reauth.UnauthorizedError", err)
		}
		if n := c.sent.Load(); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
		t.Logf("Apache's refusal: %v (ErrTokenRefused: %v)", err, errors.Is(err, ErrTokenRefused))
	})
}

// tampering is a Base that alters the Negotiate token on Apache's final
// response before the Transport sees it.
type tampering struct {
	base   http.RoundTripper
	alter  func([]byte) []byte
	closed chan struct{}
}

type notifyClose struct {
	io.ReadCloser
	done chan struct{}
}

func (b notifyClose) Close() error {
	select {
	case b.done <- struct{}{}:
	default:
	}
	return b.ReadCloser.Close()
}

func (tm *tampering) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tm.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	raw, found, err := serverToken(resp.Header, false)
	if err != nil || !found {
		return resp, err
	}
	resp.Header.Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(tm.alter(raw)))
	resp.Body = notifyClose{resp.Body, tm.closed}
	return resp, nil
}

// Apache's AP-REP altered in transit, or replaced by Apache's answer to an
// earlier request: the response is withheld (its body closed) and the error
// matches both ErrMutualAuthentication sentinels.
func TestIntegrationTransportTamperedServerToken(t *testing.T) {
	r := newRealm(t)
	cl := r.keytabClient(t, r.user, r.keytab)
	u := r.web.JoinPath("/negotiate/").String()

	// An earlier genuine answer, for the replay.
	var earlier []byte
	{
		c := newCounting(t, nil, nil, nil)
		rec := &tampering{base: c.Transport, closed: make(chan struct{}, 1), alter: func(b []byte) []byte {
			earlier = b
			return b
		}}
		tr := &reauth.Transport{Base: rec, Credentials: New(cl), Origins: []string{r.web.String()}}
		if resp, _, err := transportGet(t, tr, u); err != nil || resp.StatusCode != http.StatusOK || earlier == nil {
			t.Fatalf("genuine: %v (token seen: %v)", err, earlier != nil)
		}
	}
	for name, alter := range map[string]func([]byte) []byte{
		"last byte flipped": func(b []byte) []byte {
			b = append([]byte(nil), b...)
			b[len(b)-1] ^= 0x01
			return b
		},
		"replayed answer": func([]byte) []byte { return earlier },
	} {
		t.Run(name, func(t *testing.T) {
			c := newCounting(t, nil, nil, nil)
			tm := &tampering{base: c.Transport, alter: alter, closed: make(chan struct{}, 1)}
			tr := &reauth.Transport{Base: tm, Credentials: New(cl), Origins: []string{r.web.String()}}
			resp, _, err := transportGet(t, tr, u)
			if resp != nil {
				t.Fatalf("got a %d response, want it withheld", resp.StatusCode)
			}
			if !errors.Is(err, ErrMutualAuthentication) || !errors.Is(err, reauth.ErrMutualAuthentication) || !errors.Is(err, reauth.ErrFinal) {
				t.Fatalf("err = %v, want ErrMutualAuthentication (both), final", err)
			}
			select {
			case <-tm.closed:
			default:
				t.Error("the withheld response's body was not closed")
			}
			if n := c.sent.Load(); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

// A path alice may not read: 403 after the token was accepted, final
// (*reauth.ForbiddenError), no retry.
func TestIntegrationTransportForbiddenIsFinal(t *testing.T) {
	r := newRealm(t)
	c := newCounting(t, nil, nil, nil)
	tr := webTransport(r, c, New(r.keytabClient(t, r.user, r.keytab)))
	resp, _, err := transportGet(t, tr, r.web.JoinPath("/negotiate-other/").String())
	var fe *reauth.ForbiddenError
	if resp != nil || !errors.As(err, &fe) || fe.Proxy || !errors.Is(err, reauth.ErrFinal) {
		t.Fatalf("err = %v, want a final origin *reauth.ForbiddenError", err)
	}
	if n := c.sent.Load(); n != 2 {
		t.Errorf("%d requests, want 2 (the challenge, the answer)", n)
	}
}

// squid as a Negotiate proxy, its principal HTTP/127.0.0.1: a plain-http
// request and an https request (CONNECT) through Transport.Proxy with
// Transport.ProxyCredentials = New(cl) over an *http.Transport Base.
func TestIntegrationTransportProxy(t *testing.T) {
	r := newRealm(t)
	cl := r.keytabClient(t, r.user, r.keytab)

	t.Run("http", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			opts  []Option
			later int32
		}{
			{"default", nil, 2},
			{"PreemptiveAfterChallenge", []Option{PreemptiveAfterChallenge()}, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := newCounting(t, nil, nil, nil)
				tr := &reauth.Transport{Base: c.Transport, Proxy: http.ProxyURL(r.proxy), ProxyCredentials: NewWithOptions(cl, tc.opts...)}
				var counts []int32
				for call := range 2 {
					before := c.sent.Load()
					resp, body, err := transportGet(t, tr, r.web.JoinPath("/public/").String())
					if err != nil || resp.StatusCode != http.StatusOK || body != "ok public\n" {
						t.Fatalf("call %d through squid: %v", call+1, err)
					}
					counts = append(counts, c.sent.Load()-before)
				}
				if counts[0] != 2 || counts[1] != tc.later {
					t.Errorf("requests per call %v, want [2 %d]", counts, tc.later)
				}
				t.Logf("requests per call through squid (http, %s): %v", tc.name, counts)
			})
		}
	})

	t.Run("CONNECT", func(t *testing.T) {
		origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok tls\n")
		}))
		defer origin.Close()
		pool := origin.Client().Transport.(*http.Transport).TLSClientConfig
		c := newCounting(t, nil, nil, pool)
		tr := &reauth.Transport{Base: c.Transport, Proxy: http.ProxyURL(r.proxy), ProxyCredentials: New(cl)}
		var counts []int32
		for call := range 2 {
			before := c.sent.Load()
			resp, body, err := transportGet(t, tr, origin.URL)
			if err != nil || resp.StatusCode != http.StatusOK || body != "ok tls\n" {
				t.Fatalf("call %d through squid's CONNECT: %v", call+1, err)
			}
			counts = append(counts, c.sent.Load()-before)
			c.Transport.(*http.Transport).CloseIdleConnections()
		}
		for i, n := range counts {
			if n != 1 {
				t.Errorf("call %d: %d CONNECTs, want 1 (the configured proxy gets a token up front)", i+1, n)
			}
		}
		t.Logf("CONNECTs per call through squid: %v", counts)
	})

	t.Run("CONNECT, wrong principal", func(t *testing.T) {
		c := newCounting(t, nil, nil, nil)
		creds := NewWithOptions(cl, WithSPN(func(string) string { return "HTTP/localhost" }))
		tr := &reauth.Transport{Base: c.Transport, Proxy: http.ProxyURL(r.proxy), ProxyCredentials: creds}
		// squid refuses the CONNECT: the target is never reached.
		resp, _, err := transportGet(t, tr, "https://127.0.0.1:9/")
		var pe *reauth.UnauthorizedError
		if resp != nil || !errors.As(err, &pe) || pe.StatusCode != http.StatusProxyAuthRequired || pe.Method != http.MethodConnect || !errors.Is(err, ErrTokenRefused) {
			t.Fatalf("err = %v, want a CONNECT 407 *reauth.UnauthorizedError matching ErrTokenRefused", err)
		}
		if n := c.sent.Load(); n != 1 {
			t.Errorf("%d CONNECTs, want 1", n)
		}
	})

	t.Run("wrong principal", func(t *testing.T) {
		c := newCounting(t, nil, nil, nil)
		creds := NewWithOptions(cl, WithSPN(func(string) string { return "HTTP/localhost" }))
		tr := &reauth.Transport{Base: c.Transport, Proxy: http.ProxyURL(r.proxy), ProxyCredentials: creds}
		resp, _, err := transportGet(t, tr, r.web.JoinPath("/public/").String())
		var ue *reauth.UnauthorizedError
		if resp != nil || !errors.As(err, &ue) || ue.StatusCode != http.StatusProxyAuthRequired || !errors.Is(err, reauth.ErrFinal) {
			t.Fatalf("err = %v, want a final 407 *reauth.UnauthorizedError", err)
		}
		if n := c.sent.Load(); n > 2 {
			t.Errorf("%d requests, want at most 2", n)
		}
		t.Logf("squid's refusal of Apache's ticket after %d requests: %v", c.sent.Load(), err)
	})
}

// The example program, built and run against Apache (mutual authentication
// required) and through squid, as a user would run it.
func TestIntegrationExample(t *testing.T) {
	r := newRealm(t)
	bin := filepath.Join(t.TempDir(), "example")
	if out, err := exec.Command("go", "build", "-o", bin, "./example").CombinedOutput(); err != nil {
		t.Fatalf("go build ./example: %v\n%s", err, out)
	}
	login := []string{"-user", r.user, "-realm", r.name, "-keytab", r.keytab}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-mutual", r.web.JoinPath("/negotiate/").String()}, "ok negotiate\n"},
		{[]string{"-proxy", r.proxy.String(), r.web.JoinPath("/public/").String()}, "ok public\n"},
	} {
		cmd := exec.Command(bin, append(login, tc.args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || string(out) != tc.want {
			t.Errorf("example %v: %v, stdout %q, stderr %q; want %q", tc.args, err, out, stderr.String(), tc.want)
		}
	}
	out, err := exec.Command(bin, append(login, r.web.JoinPath("/negotiate-other/").String())...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "403 forbidden") {
		t.Errorf("example on the forbidden path: %v, %q; want exit 1 and 403 forbidden", err, out)
	}
}

package mockserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProxyConfig makes the server a forward proxy as well, on its own
// listener: a client sets the server's URL as its proxy. Requests in
// absolute-form (GET http://127.0.0.1:8080/x, RFC 9112 §3.2.2) are
// forwarded, and CONNECT opens a tunnel (RFC 9110 §9.3.6), both to
// loopback targets only: any other target gets 403 and is never dialled.
// Requests in origin-form are served by the scenarios as before, so one
// server can be the proxy and the origin behind it.
//
// Every proxy request must carry Proxy-Authorization for a user of
// Config.Users (RFC 9110 §11.7.2); otherwise it gets 407 with a
// Proxy-Authenticate challenge per scheme, realm Config.Realms["proxy"]
// ("proxy@reauth.mock" by default). The proxy consumes the field: it is
// never forwarded.
type ProxyConfig struct {
	// Enabled turns the forward proxy on.
	Enabled bool
	// Schemes are the schemes a 407 challenges for, in this order: "Basic"
	// (RFC 7617) and "Digest" (RFC 7616: one challenge per
	// Config.Digest.Algorithms, qop=auth, nonces of its own, and
	// Proxy-Authentication-Info with rspauth). Empty means Basic.
	Schemes []string
}

// proxyRealmKey is the proxy's key in Config.Realms.
const proxyRealmKey = "proxy"

// proxyState is what the forward proxy holds at run time.
type proxyState struct {
	transport *http.Transport // dials loopback addresses only
	forward   *httputil.ReverseProxy

	mu      sync.Mutex
	tunnels map[net.Conn]struct{} // both ends of every open tunnel
	closed  bool
	wg      sync.WaitGroup // tunnels running
}

func (s *Server) initProxy() {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: loopbackOnly}
	s.proxy.transport = &http.Transport{
		DialContext:         dialer.DialContext,
		DisableCompression:  true, // pass Content-Encoding through as the origin sent it
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	s.proxy.forward = &httputil.ReverseProxy{
		Transport: s.proxy.transport,
		// The request is already in absolute-form with the target's Host;
		// ReverseProxy has dropped the hop-by-hop fields. Proxy-Authorization
		// is one of them, consumed here (RFC 9110 §11.7.2); said twice so
		// that no change to ReverseProxy can leak it.
		Rewrite: func(pr *httputil.ProxyRequest) { pr.Out.Header.Del("Proxy-Authorization") },
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeText(w, http.StatusBadGateway, "the mock proxy could not reach "+printable(r.URL.Host))
		},
	}
}

// loopbackOnly is the dialer's check of the address it is about to connect
// to, after name resolution: the proxy never reaches beyond the machine.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	if !IsLoopback(address) {
		return fmt.Errorf("mock proxy: %s is not a loopback address", address)
	}
	return nil
}

// isProxyRequest reports whether r is meant for the proxy: CONNECT, or a
// request-target in absolute-form.
func isProxyRequest(r *http.Request) bool {
	return r.Method == http.MethodConnect || r.URL.IsAbs()
}

// proxyTarget is what the request log shows of a proxy request's target:
// host:port for CONNECT, else the URL without its query.
func proxyTarget(r *http.Request) string {
	if r.Method == http.MethodConnect {
		return printable(r.Host)
	}
	u := *r.URL
	u.RawQuery, u.ForceQuery, u.Fragment, u.User = "", false, "", nil
	return printable(u.String())
}

// serveProxy answers a proxy request: 407 until Proxy-Authorization is
// right, 403 for a target that is not loopback, then the forward or the
// tunnel.
func (s *Server) serveProxy(w *recorder, r *http.Request) {
	vd, ref := s.checkProxyAuthorization(r)
	switch {
	case ref != nil && ref.bad != nil:
		writeProblem(w, ref.bad)
		return
	case ref != nil:
		s.proxyChallenge(w, ref.stale, ref.msg)
		return
	}
	info := ""
	if vd != nil {
		info = s.authenticationInfo(*vd, nil, false, false)
	}
	if r.Method == http.MethodConnect {
		s.serveConnect(w, r, info)
		return
	}
	if r.URL.Scheme != "http" {
		writeText(w, http.StatusBadRequest, "the mock proxy forwards http URLs; https goes through CONNECT")
		return
	}
	host := r.URL.Host
	if r.URL.Port() == "" {
		host = net.JoinHostPort(r.URL.Hostname(), "80")
	}
	if !IsLoopback(host) {
		writeText(w, http.StatusForbidden, "the mock proxy reaches loopback targets only")
		return
	}
	if info != "" {
		w.Header().Set("Proxy-Authentication-Info", info)
	}
	s.proxy.forward.ServeHTTP(w, r)
}

// checkProxyAuthorization checks r's Proxy-Authorization against
// Config.Users with the schemes of Config.Proxy. It returns the verified
// Digest exchange (nil for Basic), or why the request is refused.
func (s *Server) checkProxyAuthorization(r *http.Request) (*verifiedDigest, *refusal) {
	again := func(msg string) (*verifiedDigest, *refusal) { return nil, &refusal{msg: msg} }
	c, p := readCredentials(r.Header, "Proxy-Authorization")
	switch {
	case p != nil:
		return nil, &refusal{bad: p}
	case c == nil:
		return again("proxy authentication required")
	case c.Is("Basic") && s.proxyOffers("Basic"):
		user, password, p := decodeBasic(c)
		switch {
		case p != nil && p.status == http.StatusBadRequest:
			return nil, &refusal{bad: p}
		case p != nil:
			return again(p.msg)
		case !s.checkPassword(user, password):
			return again("unknown user or wrong password")
		}
		return nil, nil
	case c.Is("Digest") && s.proxyOffers("Digest"):
		vd, ref := s.verifyDigest(c, r, digestRules{
			realm: s.Realm(proxyRealmKey), algorithms: s.cfg.Digest.Algorithms,
			qop: []string{"auth"}, maxUses: s.cfg.Digest.NonceMaxUses,
		})
		if ref != nil {
			return nil, ref
		}
		return &vd, nil
	default:
		return again("the mock proxy takes " + strings.Join(s.cfg.Proxy.Schemes, " or ") + ", not " + printable(c.Scheme))
	}
}

func (s *Server) proxyOffers(scheme string) bool {
	for _, sc := range s.cfg.Proxy.Schemes {
		if sc == scheme {
			return true
		}
	}
	return false
}

// proxyChallenge answers 407 with a Proxy-Authenticate challenge per scheme
// (RFC 9110 §15.5.8, §11.7.1).
func (s *Server) proxyChallenge(w http.ResponseWriter, stale bool, msg string) {
	realm := s.Realm(proxyRealmKey)
	for _, scheme := range s.cfg.Proxy.Schemes {
		switch scheme {
		case "Basic":
			w.Header().Add("Proxy-Authenticate", basicChallenge(realm))
		case "Digest":
			for _, c := range s.digestChallenges(realm, s.cfg.Digest.Algorithms, []string{"auth"}, "", false, stale) {
				w.Header().Add("Proxy-Authenticate", c)
			}
		}
	}
	writeText(w, http.StatusProxyAuthRequired, msg)
}

// serveConnect opens a tunnel to a loopback target: 200, then bytes both
// ways until either side closes or the server does.
func (s *Server) serveConnect(w *recorder, r *http.Request, info string) {
	if _, port, err := net.SplitHostPort(r.Host); err != nil || port == "" {
		writeText(w, http.StatusBadRequest, "CONNECT needs host:port (RFC 9110 §9.3.6)")
		return
	}
	if !IsLoopback(r.Host) {
		writeText(w, http.StatusForbidden, "the mock proxy reaches loopback targets only")
		return
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: loopbackOnly}
	target, err := dialer.DialContext(r.Context(), "tcp", r.Host)
	if err != nil {
		writeText(w, http.StatusBadGateway, "the mock proxy could not reach "+printable(r.Host))
		return
	}
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		target.Close()
		writeText(w, http.StatusInternalServerError, "this connection cannot be hijacked for a tunnel")
		return
	}
	w.commit(http.StatusOK)
	head := "HTTP/1.1 200 Connection established\r\n"
	if info != "" {
		head += "Proxy-Authentication-Info: " + info + "\r\n"
	}
	if _, err := io.WriteString(client, head+"\r\n"); err != nil {
		client.Close()
		target.Close()
		return
	}
	s.tunnel(client, brw.Reader, target)
}

// tunnel copies bytes both ways; when either direction ends, both
// connections are closed. Close ends every tunnel.
func (s *Server) tunnel(client net.Conn, fromClient *bufio.Reader, target net.Conn) {
	ps := &s.proxy
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		client.Close()
		target.Close()
		return
	}
	if ps.tunnels == nil {
		ps.tunnels = map[net.Conn]struct{}{}
	}
	ps.tunnels[client], ps.tunnels[target] = struct{}{}, struct{}{}
	ps.wg.Add(1)
	ps.mu.Unlock()
	defer ps.wg.Done()

	done := make(chan struct{}, 2)
	go func() {
		io.Copy(target, fromClient) // bytes the client sent after CONNECT are buffered there
		done <- struct{}{}
	}()
	go func() {
		io.Copy(client, target)
		done <- struct{}{}
	}()
	<-done
	client.Close()
	target.Close()
	<-done
	ps.mu.Lock()
	delete(ps.tunnels, client)
	delete(ps.tunnels, target)
	ps.mu.Unlock()
}

// closeProxy ends every tunnel and waits for them, and drops the idle
// connections of the forwarding transport.
func (s *Server) closeProxy() {
	ps := &s.proxy
	ps.mu.Lock()
	ps.closed = true
	for c := range ps.tunnels {
		c.Close()
	}
	ps.mu.Unlock()
	ps.wg.Wait()
	if ps.transport != nil {
		ps.transport.CloseIdleConnections()
	}
}

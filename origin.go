package reauth

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Origin is a web origin (RFC 6454): scheme, host and port, lower case, with
// the scheme's default port filled in. It is comparable and costs no
// allocation to make, so Credentials key per-origin state by it.
type Origin struct {
	Scheme string // "http" or "https"
	Host   string // lower case, without brackets for IPv6
	Port   string // always present: "443" for https without a port
}

// origin is the package's short name for Origin.
type origin = Origin

// originSet is the parsed Transport.Origins.
type originSet struct {
	list []origin
}

// parseOrigins parses the origins of a setting; field names it in errors
// ("Transport.Origins").
func parseOrigins(field string, raw []string) (*originSet, error) {
	s := &originSet{list: make([]origin, 0, len(raw))}
	for i, r := range raw {
		u, err := url.Parse(r)
		if err != nil {
			// The text is not echoed: a mistyped entry may hold userinfo.
			return nil, fmt.Errorf("%w: %s[%d] is not a URL; write scheme://host[:port], e.g. https://api.example.com", ErrConfig, field, i)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			// Not echoed either: without "scheme://", "user:pw@host" parses
			// as scheme "user" with the password in the opaque part.
			return nil, fmt.Errorf("%w: %s[%d] is not an origin; write scheme://host[:port], e.g. https://api.example.com", ErrConfig, field, i)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%w: %s[%d] %q has more than scheme://host[:port]; credentials are bound to whole origins", ErrConfig, field, i, redactURL(u))
		}
		s.list = append(s.list, origin{Scheme: u.Scheme, Host: strings.ToLower(u.Hostname()), Port: portOf(u)})
	}
	return s, nil
}

// contains reports whether u's origin is in the set. It allocates nothing:
// it runs for every request.
func (s *originSet) contains(u *url.URL) bool {
	if s == nil {
		return false
	}
	host, port := u.Hostname(), portOf(u)
	for _, o := range s.list {
		if o.Port == port && strings.EqualFold(o.Host, host) && strings.EqualFold(o.Scheme, u.Scheme) {
			return true
		}
	}
	return false
}

// hasPlainHTTP reports whether any origin in the set is plain http: only
// requests to those need to know their proxy (the loopback rule, Host
// overrides).
func (s *originSet) hasPlainHTTP() bool {
	for _, o := range s.list {
		if o.Scheme == "http" {
			return true
		}
	}
	return false
}

// unbound is the reason a 401 from u was not answered: u's origin is not in
// the set. It names the listed origins close to u (the same host on another
// scheme or port, or another name for loopback), the usual mistakes behind
// it: localhost for 127.0.0.1, an origin written without its port, https
// for http.
func (s *originSet) unbound(u *url.URL) error {
	o := originOf(u)
	var near []string
	for _, b := range s.list {
		var diff []string
		if b.Host != o.Host {
			if !isLoopback(b.Host) || !isLoopback(o.Host) {
				continue
			}
			diff = append(diff, "another host name: "+b.Host+" and "+o.Host+" are different origins")
		}
		if b.Scheme != o.Scheme {
			diff = append(diff, "scheme "+b.Scheme+", not "+o.Scheme)
		}
		if b.Port != o.Port {
			diff = append(diff, "port "+b.Port+", not "+o.Port)
		}
		near = append(near, b.String()+" ("+strings.Join(diff, "; ")+")")
	}
	if len(near) == 0 {
		return fmt.Errorf("%w: %s; add it to Origins to send it credentials", ErrUnboundOrigin, o)
	}
	return fmt.Errorf("%w: %s; close to it in Origins: %s", ErrUnboundOrigin, o, strings.Join(near, ", "))
}

// String returns the origin as "scheme://host:port".
func (o Origin) String() string {
	host := o.Host
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	return o.Scheme + "://" + host + ":" + o.Port
}

// portOf returns u's port, or the default port of its scheme.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// originOf returns u's origin. It allocates only for a host with upper-case
// letters: url.Parse already lower-cases the scheme.
func originOf(u *url.URL) origin {
	return origin{Scheme: lowerASCII(u.Scheme), Host: lowerASCII(u.Hostname()), Port: portOf(u)}
}

// canonicalOrigin returns "scheme://host:port" for u, lower case, the key
// under which password schemes keep per-origin state.
func canonicalOrigin(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	return strings.ToLower(u.Scheme) + "://" + host + ":" + portOf(u)
}

// isLoopback reports whether host names this machine: localhost, 127.0.0.0/8
// or ::1. Credentials may go to it over plain http.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// redactURL returns u without userinfo, query or fragment, for errors and
// logs: queries often carry secrets (access_token=…).
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

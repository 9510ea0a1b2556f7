package negotiate

import (
	"context"
	"errors"
	"net/url"
	"testing"
)

func TestSPN(t *testing.T) {
	cnames := map[string]string{"alias.corp.example": "Web01.Corp.Example."}
	lookup := func(_ context.Context, host string) (string, error) {
		if c, ok := cnames[host]; ok {
			return c, nil
		}
		return "", errors.New("no such host")
	}
	override := func(host string) string {
		if host == "legacy.corp.example" {
			return "HTTP/legacy-svc.corp.example@OTHER.EXAMPLE"
		}
		return ""
	}
	cases := []struct {
		name   string
		policy spnPolicy
		url    string
		want   string
	}{
		{"host without port", spnPolicy{}, "https://API.Example.com:8443/x", "HTTP/api.example.com"},
		{"trailing dot", spnPolicy{}, "http://api.example.com./", "HTTP/api.example.com"},
		{"proxy URL", spnPolicy{}, "http://127.0.0.1:3128", "HTTP/127.0.0.1"},
		{"IPv6 literal", spnPolicy{}, "http://[::1]:80/", "HTTP/::1"},
		{"alias not canonicalised by default", spnPolicy{lookupCNAME: lookup}, "https://alias.corp.example/", "HTTP/alias.corp.example"},
		{"alias canonicalised when asked", spnPolicy{canonical: true, lookupCNAME: lookup}, "https://alias.corp.example/", "HTTP/web01.corp.example"},
		{"failed lookup keeps the host", spnPolicy{canonical: true, lookupCNAME: lookup}, "https://other.corp.example/", "HTTP/other.corp.example"},
		{"override wins", spnPolicy{canonical: true, lookupCNAME: lookup, override: override}, "https://legacy.corp.example/", "HTTP/legacy-svc.corp.example@OTHER.EXAMPLE"},
		{"override declines", spnPolicy{override: override}, "https://api.example.com/", "HTTP/api.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.policy.spn(context.Background(), u)
			if err != nil || got != tc.want {
				t.Fatalf("spn(%s) = %q, %v; want %q", tc.url, got, err, tc.want)
			}
		})
	}
}

// An IP literal is never looked up: there is no CNAME to follow.
func TestSPNDoesNotResolveAddresses(t *testing.T) {
	p := spnPolicy{canonical: true, lookupCNAME: func(context.Context, string) (string, error) {
		t.Error("lookupCNAME called for an IP address")
		return "", errors.New("unexpected")
	}}
	if got, err := p.spn(context.Background(), &url.URL{Scheme: "http", Host: "192.0.2.1:80"}); err != nil || got != "HTTP/192.0.2.1" {
		t.Fatalf("spn = %q, %v", got, err)
	}
}

func TestSPNNeedsAHost(t *testing.T) {
	if _, err := (spnPolicy{}).spn(context.Background(), &url.URL{Scheme: "http", Path: "/x"}); !errors.Is(err, errNoHost) {
		t.Fatalf("spn of a URL without host = %v, want errNoHost", err)
	}
}

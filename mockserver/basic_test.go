package mockserver

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBasicAcceptsConfiguredUsers(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, u := range []struct{ user, password string }{
		{"alice", "wonderland"},
		{"bob", "builder"},
		{"Jäsøn Doe", "Secret, or not?"}, // UTF-8, as charset="UTF-8" says (RFC 7617 §2.1)
	} {
		r := get(t, srv.URL()+"/basic/some/resource", basic(u.user, u.password))
		require.Equal(t, http.StatusOK, r.status, u.user)
		assert.Equal(t, u.user, r.json(t)["user"])
		assert.Equal(t, "basic", r.json(t)["scenario"])
	}
}

func TestBasicRefusesWithTheChallenge(t *testing.T) {
	srv, _ := newTestServer(t)
	latin1 := "Basic " + base64.StdEncoding.EncodeToString([]byte("J\xe4s\xf8n Doe:Secret, or not?"))
	for _, tt := range []struct{ name, authorization string }{
		{"no credentials", ""},
		{"wrong password", basic("alice", "builder")},
		{"unknown user", basic("mallory", "wonderland")},
		{"user-id in ISO-8859-1", latin1},
		{"Bearer instead", bearer("mock-token-read")},
		{"scheme in lower case, wrong password", "basic " + base64.StdEncoding.EncodeToString([]byte("alice:x"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, srv.URL()+"/basic/", tt.authorization)
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, []string{`Basic realm="basic@reauth.mock", charset="UTF-8"`}, r.header.Values("WWW-Authenticate"))
		})
	}
}

func TestBasicSchemeIsCaseInsensitive(t *testing.T) {
	srv, _ := newTestServer(t)
	r := get(t, srv.URL()+"/basic/", "bAsIc "+base64.StdEncoding.EncodeToString([]byte("alice:wonderland")))
	assert.Equal(t, http.StatusOK, r.status)
}

func TestUsersAndRealmsAreConfiguration(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) {
		c.Users = map[string]string{"carol": "s3cret"}
		c.Realms = map[string]string{"basic": `Carol's "realm"`}
	})
	r := get(t, srv.URL()+"/basic/", "")
	assert.Equal(t, `Basic realm="Carol's \"realm\"", charset="UTF-8"`, r.header.Get("WWW-Authenticate"))
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/basic/", basic("carol", "s3cret")).status)
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/basic/", basic("alice", "wonderland")).status)
	assert.Equal(t, `Carol's "realm"`, srv.Realm("basic"))
	assert.Equal(t, "digest/md5@reauth.mock", srv.Realm("digest/md5"))
}

func TestConfigIsValidated(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		says string
	}{
		{"user name with a colon", func(c *Config) { c.Users["a:b"] = "x" }, "Users"},
		{"empty user name", func(c *Config) { c.Users[""] = "x" }, "Users"},
		{"realm with a newline", func(c *Config) { c.Realms = map[string]string{"basic": "a\nb"} }, "Realms"},
		{"registry POST status", func(c *Config) { c.Registry.TokenPOST = 200 }, "Registry.TokenPOST"},
		{"remote address", func(c *Config) { c.Addr = "0.0.0.0:0" }, "not loopback"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			s, err := NewUnstarted(cfg)
			if err == nil {
				err = s.Start()
			}
			assert.ErrorContains(t, err, tt.says)
		})
	}
	assert.Panics(t, func() { New(Config{Digest: DigestConfig{Algorithms: []string{"SHA-1"}}}) })
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8089": true, "[::1]:0": true, "localhost:80": true, "127.3.4.5:1": true,
		":8089": false, "0.0.0.0:1": false, "192.168.1.1:80": false, "example.com:80": false, "127.0.0.1": false,
	} {
		assert.Equal(t, want, IsLoopback(addr), addr)
	}
}

func TestServerListensOnLoopback(t *testing.T) {
	srv, _ := newTestServer(t)
	assert.Regexp(t, `^http://127\.0\.0\.1:\d+$`, srv.URL())
}

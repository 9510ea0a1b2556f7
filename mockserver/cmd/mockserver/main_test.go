package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunRefusesNonLoopbackWithoutAllowRemote(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8089", ":8089", "192.0.2.1:80", "example.com:80"} {
		err := run(context.Background(), []string{"-addr", addr}, io.Discard, io.Discard)
		require.Error(t, err, addr)
		assert.Contains(t, err.Error(), "-allow-remote")
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-user", "nopassword"},
		{"-nonsense"},
		{"extra-argument"},
		{"-registry-token-post", "200"},
		{"-proxy", "-proxy-schemes", "basic,ntlm"},
	} {
		assert.Error(t, run(context.Background(), append(args, "-addr", "127.0.0.1:0"), io.Discard, io.Discard), args)
	}
}

func TestRunServesTheListingUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-user", "carol:s3cret:with:colons", "-admin", "carol"}, w, io.Discard)
		w.Close()
	}()
	var listing strings.Builder
	var url string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		listing.WriteString(line + "\n")
		if u, ok := strings.CutPrefix(line, "listening on "); ok {
			url = u
			break
		}
	}
	go io.Copy(io.Discard, out)
	require.NotEmpty(t, url, "the command says where it listens")
	assert.Contains(t, listing.String(), `"carol" / "s3cret:with:colons"  (admin)`)
	assert.Contains(t, listing.String(), "/digest/")

	req, err := http.NewRequest(http.MethodGet, url+"/forbidden/", nil)
	require.NoError(t, err)
	req.SetBasicAuth("carol", "s3cret:with:colons")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	assert.NoError(t, <-done)
}

func TestRunWithProxyForwardsThroughTheSameAddress(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-quiet", "-proxy", "-proxy-schemes", "Basic, Digest"}, w, io.Discard)
		w.Close()
	}()
	var proxyLine, base string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "forward proxy") {
			proxyLine = sc.Text()
		}
		if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			base = u
			break
		}
	}
	go io.Copy(io.Discard, out)
	require.NotEmpty(t, base)
	assert.Equal(t, "forward proxy (Basic, Digest) on "+base, proxyLine)

	pu, err := url.Parse(base)
	require.NoError(t, err)
	tr := &http.Transport{Proxy: http.ProxyURL(pu)}
	defer tr.CloseIdleConnections()
	for _, tt := range []struct {
		proxyAuthorization string
		status             int
	}{
		{"", http.StatusProxyAuthRequired},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland")), http.StatusUnauthorized}, // /basic/'s own challenge
	} {
		req, err := http.NewRequest(http.MethodGet, base+"/basic/", nil)
		require.NoError(t, err)
		if tt.proxyAuthorization != "" {
			req.Header.Set("Proxy-Authorization", tt.proxyAuthorization)
		}
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tt.status, resp.StatusCode)
	}

	cancel()
	assert.NoError(t, <-done)
}

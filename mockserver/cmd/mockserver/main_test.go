package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
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

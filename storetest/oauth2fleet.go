package storetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// The OAuth2 fleet test: N processes of a small program (see
// [OAuth2FleetMember]) with G goroutines each send requests through
// reauth's Transport and ClientCredentials, with OAuth2Options.Store set to
// the one store they share, to the mock server's /oauth2/resource; tokens
// come from its /oauth2/token. The parent drives rounds over each process's
// stdin: the first round starts cold, then revocations (the mock revokes
// every access token) and expiries (the parent waits out the token's
// lifetime) alternate. Each round must cost exactly one token fetch in the
// whole fleet, and no request may fail.

// Environment of an OAuth2 fleet member.
const (
	envOAuth2URL        = "REAUTH_OAUTH2_FLEET_URL"
	envOAuth2Goroutines = "REAUTH_OAUTH2_FLEET_GOROUTINES"
	envOAuth2Requests   = "REAUTH_OAUTH2_FLEET_REQUESTS"
)

// oauth2FleetLifetime is the mock's access token lifetime; members use a
// Skew of 1 s, so a token is refreshed in the background from 18 s after
// its fetch. A round must end before then (on a loaded machine, 32
// processes take some seconds), or that refresh counts as a second fetch.
const oauth2FleetLifetime = 20 * time.Second

// OAuth2FleetConfig describes one OAuth2 fleet run.
type OAuth2FleetConfig struct {
	// Program is the package to build whose main opens the store and calls
	// [OAuth2FleetMember].
	Program string
	// Processes (N) and Goroutines (G) per process.
	Processes, Goroutines int
	// Requests is how many requests each goroutine sends a round.
	Requests int
	// Rounds after the first: revocations and expiries, alternating.
	Rounds int
	// Env is added to each process's environment (where the store is).
	Env []string
}

// OAuth2FleetResult is what the mock counted.
type OAuth2FleetResult struct {
	Fetches  []int // token fetches of each round; [0] is the cold start
	Requests int   // requests sent by the whole fleet
	Failed   int   // requests that failed
}

// BuildProgram builds pkg into a temporary directory of t and returns the
// binary.
func BuildProgram(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "member")
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "building %s", pkg)
	return bin
}

// OAuth2Fleet is a running fleet of OAuth2 members against a mock server.
type OAuth2Fleet struct {
	Mock  *mockserver.Server
	cmds  []*exec.Cmd
	ins   []io.WriteCloser
	outs  []*bufio.Scanner
	errs  []*strings.Builder
	total OAuth2FleetResult
	// before is the mock's grant count when the round started.
	before int
}

// StartOAuth2Fleet starts cfg.Processes of bin against a new mock server.
func StartOAuth2Fleet(t *testing.T, bin string, cfg OAuth2FleetConfig) *OAuth2Fleet {
	t.Helper()
	mcfg := mockserver.DefaultConfig()
	mcfg.OAuth2.AccessTokenLifetime = oauth2FleetLifetime
	srv := mockserver.New(mcfg)
	t.Cleanup(srv.Close)
	f := &OAuth2Fleet{Mock: srv}
	env := append(os.Environ(), cfg.Env...)
	env = append(env, envOAuth2URL+"="+srv.URL(),
		envOAuth2Goroutines+"="+strconv.Itoa(cfg.Goroutines),
		envOAuth2Requests+"="+strconv.Itoa(cfg.Requests))
	for range cfg.Processes {
		cmd := exec.Command(bin)
		cmd.Env = env
		in, err := cmd.StdinPipe()
		require.NoError(t, err)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		errb := &strings.Builder{}
		cmd.Stderr = errb
		require.NoError(t, cmd.Start())
		f.cmds, f.ins, f.errs = append(f.cmds, cmd), append(f.ins, in), append(f.errs, errb)
		f.outs = append(f.outs, bufio.NewScanner(out))
	}
	t.Cleanup(func() {
		for i, in := range f.ins {
			_ = in.Close()
			if err := f.cmds[i].Wait(); err != nil {
				t.Errorf("fleet process %d: %v: %s", i, err, f.errs[i].String())
			}
		}
	})
	return f
}

// Round has every process send its requests at once and returns the token
// fetches the mock saw meanwhile and the requests that failed.
func (f *OAuth2Fleet) Round(t *testing.T) (fetches, failed int) {
	t.Helper()
	f.Start(t)
	return f.Finish(t)
}

// Start has every process start its requests of a round.
func (f *OAuth2Fleet) Start(t *testing.T) {
	t.Helper()
	f.before = f.Mock.TokenGrants()
	for _, in := range f.ins {
		_, err := io.WriteString(in, "go\n")
		require.NoError(t, err)
	}
}

// Finish waits for the round Start began and returns the token fetches the
// mock saw meanwhile and the requests that failed. Call it on the test's
// goroutine.
func (f *OAuth2Fleet) Finish(t *testing.T) (fetches, failed int) {
	t.Helper()
	before := f.before
	for i, out := range f.outs {
		require.True(t, out.Scan(), "fleet process %d ended: %s", i, f.errs[i].String())
		var n, bad int
		_, err := fmt.Sscanf(out.Text(), "done %d %d", &n, &bad)
		require.NoError(t, err, "fleet process %d said %q", i, out.Text())
		f.total.Requests += n
		failed += bad
	}
	f.total.Failed += failed
	return f.Mock.TokenGrants() - before, failed
}

// RunOAuth2Fleet builds cfg.Program and runs the rounds: a cold start, then
// revocations and expiries alternating. It fails t unless each round saw
// exactly one token fetch and no request failed.
func RunOAuth2Fleet(t *testing.T, cfg OAuth2FleetConfig) OAuth2FleetResult {
	t.Helper()
	f := StartOAuth2Fleet(t, BuildProgram(t, cfg.Program), cfg)
	var fetchedAt time.Time
	for r := 0; r <= cfg.Rounds; r++ {
		switch {
		case r == 0:
		case r%2 == 1:
			f.Mock.RevokeAll()
		default:
			// Expiry: wait out the token fetched last (real time; the mock and
			// the members use the system clock).
			time.Sleep(time.Until(fetchedAt.Add(oauth2FleetLifetime + 500*time.Millisecond)))
		}
		start := time.Now()
		fetches, failed := f.Round(t)
		took := time.Since(start)
		fetchedAt = start
		f.total.Fetches = append(f.total.Fetches, fetches)
		what := [...]string{"cold start", "revocation", "expiry"}[min(r, 1+(r+1)%2)]
		assert.Equal(t, 1, fetches, "round %d (%s, %v): token fetches in the whole fleet", r, what, took)
		assert.Zero(t, failed, "round %d (%s): failed requests", r, what)
	}
	return f.total
}

// OAuth2FleetMember is the body of an OAuth2 fleet program's main: for each
// line on stdin it sends the round's requests through a Transport with
// ClientCredentials over store, and writes "done <requests> <failed>".
func OAuth2FleetMember(store reauth.TokenStore) error {
	base := os.Getenv(envOAuth2URL)
	goroutines, err1 := strconv.Atoi(os.Getenv(envOAuth2Goroutines))
	requests, err2 := strconv.Atoi(os.Getenv(envOAuth2Requests))
	if base == "" || errors.Join(err1, err2) != nil {
		return errors.New("oauth2 fleet: run me from storetest.RunOAuth2Fleet (environment missing)")
	}
	client := OAuth2FleetClient(base, store, nil)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var failed atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range requests {
					if err := OAuth2FleetGet(client, base); err != nil {
						if failed.Add(1) == 1 {
							fmt.Fprintln(os.Stderr, "oauth2 fleet:", err)
						}
					}
				}
			}()
		}
		wg.Wait()
		fmt.Printf("done %d %d\n", goroutines*requests, failed.Load())
	}
	return in.Err()
}

// OAuth2FleetClient is a member's client: ClientCredentials of the mock's
// client with OAuth2Options.Store set to store, through a Transport bound to
// base; onEvent, if set, gets the Transport's events.
func OAuth2FleetClient(base string, store reauth.TokenStore, onEvent func(reauth.Event)) *http.Client {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	cfg := &clientcredentials.Config{
		ClientID: "reauth-client", ClientSecret: "reauth-secret",
		TokenURL: base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader,
	}
	return &http.Client{Timeout: time.Minute, Transport: &reauth.Transport{
		Base:        hc.Transport,
		Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{Store: store, Skew: time.Second, HTTPClient: hc}),
		Origins:     []string{base},
		OnEvent:     onEvent,
	}}
}

// OAuth2FleetGet sends one request to the mock's /oauth2/resource and
// returns why it failed, if it did.
func OAuth2FleetGet(client *http.Client, base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/oauth2/resource", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
)

// The fleet test: N processes of a small program (see [FleetMember]) with G
// goroutines each share one store. Each round, every goroutine needs a
// token of that round; odd rounds revoke the previous token (every
// goroutine invalidates the token it holds, as after a 401 invalid_token),
// even rounds find it expired (a logical clock moves an hour a round). The
// counting token endpoint must see exactly one fetch per round.

// Environment of a fleet member.
const (
	envFleetURL        = "REAUTH_FLEET_URL"
	envFleetProcesses  = "REAUTH_FLEET_PROCESSES"
	envFleetGoroutines = "REAUTH_FLEET_GOROUTINES"
	envFleetRounds     = "REAUTH_FLEET_ROUNDS"
)

// FleetConfig describes one fleet run.
type FleetConfig struct {
	// Program is the package to build (a path go build accepts from the
	// test's directory) whose main opens the store and calls [FleetMember].
	Program string
	// Processes is how many processes share the store (N).
	Processes int
	// Goroutines is how many goroutines of each process need the token.
	Goroutines int
	// Rounds is how many revocations and expiries (alternating) to run.
	Rounds int
	// Env is added to each process's environment (where the store is).
	Env []string
}

// FleetResult is what the token endpoint counted.
type FleetResult struct {
	// Fetches counts the token fetches of each round.
	Fetches map[int]int
	// Elapsed is the wall time of the whole run, for the report only.
	Elapsed time.Duration
	// PerRound is Elapsed divided by the rounds.
	PerRound time.Duration
}

var fleetBase = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// RunFleet builds cfg.Program, runs cfg.Processes of it against a counting
// token endpoint, and fails t unless every process succeeds and every round
// saw exactly one token fetch.
func RunFleet(t *testing.T, cfg FleetConfig) FleetResult {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fleet")
	build := exec.Command("go", "build", "-o", bin, cfg.Program)
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "building the fleet program")

	var mu sync.Mutex
	fetches := map[int]int{}
	arrived := map[int]int{}
	released := map[int]chan struct{}{}
	barrier := func(round int) chan struct{} {
		if released[round] == nil {
			released[round] = make(chan struct{})
		}
		return released[round]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		round, err := strconv.Atoi(r.FormValue("round"))
		if err != nil {
			http.Error(w, "no round", http.StatusBadRequest)
			return
		}
		mu.Lock()
		fetches[round]++
		n := fetches[round]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": fmt.Sprintf("tok-r%d-%d", round, n), "token_type": "Bearer", "expires_in": 1800,
		})
	})
	mux.HandleFunc("GET /barrier", func(w http.ResponseWriter, r *http.Request) {
		round, err := strconv.Atoi(r.FormValue("round"))
		if err != nil {
			http.Error(w, "no round", http.StatusBadRequest)
			return
		}
		mu.Lock()
		arrived[round]++
		ch := barrier(round)
		if arrived[round] == cfg.Processes {
			close(ch)
		}
		mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
		case <-time.After(2 * time.Minute): // hang guard
			http.Error(w, "barrier timed out", http.StatusServiceUnavailable)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env := append(os.Environ(), cfg.Env...)
	env = append(env,
		envFleetURL+"="+srv.URL,
		envFleetProcesses+"="+strconv.Itoa(cfg.Processes),
		envFleetGoroutines+"="+strconv.Itoa(cfg.Goroutines),
		envFleetRounds+"="+strconv.Itoa(cfg.Rounds),
	)
	start := time.Now()
	cmds := make([]*exec.Cmd, cfg.Processes)
	outs := make([]*strings.Builder, cfg.Processes)
	for i := range cmds {
		cmds[i] = exec.CommandContext(ctx, bin)
		cmds[i].Env = env
		outs[i] = &strings.Builder{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		require.NoError(t, cmds[i].Start())
	}
	for i, c := range cmds {
		err := c.Wait()
		assert.NoError(t, err, "fleet process %d: %s", i, outs[i].String())
	}
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	for r := 1; r <= cfg.Rounds; r++ {
		assert.Equal(t, 1, fetches[r], "round %d: token fetches in the whole fleet", r)
	}
	assert.Len(t, fetches, cfg.Rounds, "fetches only for the rounds run")
	return FleetResult{Fetches: fetches, Elapsed: elapsed, PerRound: elapsed / time.Duration(cfg.Rounds)}
}

// FleetMember is the body of a fleet program's main: it runs the rounds
// the environment set by [RunFleet] asks for against store and returns the
// first thing that went wrong.
func FleetMember(store reauth.TokenStore) error {
	base := os.Getenv(envFleetURL)
	goroutines, err1 := strconv.Atoi(os.Getenv(envFleetGoroutines))
	rounds, err2 := strconv.Atoi(os.Getenv(envFleetRounds))
	if base == "" || errors.Join(err1, err2) != nil {
		return errors.New("fleet: run me from storetest.RunFleet (environment missing)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	key := reauth.StoreKey(reauth.TokenIdentity{TokenURL: base + "/token", ClientID: "fleet"})
	client := &http.Client{Timeout: time.Minute}
	held := make([]reauth.StoredToken, goroutines)
	for round := 1; round <= rounds; round++ {
		resp, err := client.Get(base + "/barrier?round=" + strconv.Itoa(round))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fleet: barrier %d: %s", round, resp.Status)
		}
		errs := make(chan error, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := memberRound(ctx, store, client, base, key, round, held[g])
				if err == nil && !strings.HasPrefix(tok.AccessToken, fmt.Sprintf("tok-r%d-", round)) {
					err = fmt.Errorf("fleet: round %d: got a token of another round", round)
				}
				held[g] = tok
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// memberRound is one goroutine's round: invalidate the token held when the
// round revokes it, then get a valid one, fetching it only under the lease.
func memberRound(ctx context.Context, store reauth.TokenStore, client *http.Client, base, key string, round int, held reauth.StoredToken) (reauth.StoredToken, error) {
	now := fleetBase.Add(time.Duration(round) * time.Hour)
	if round%2 == 1 && held.Version != 0 {
		if _, err := reauth.InvalidateStoredToken(ctx, store, key, held); err != nil {
			return reauth.StoredToken{}, err
		}
	}
	valid := func(e reauth.StoredToken) bool { return !e.Invalidated() && e.Expiry.After(now) }
	holder := reauth.NewLeaseHolder()
	wait := time.Millisecond
	for {
		e, err := store.Load(ctx, key)
		if err == nil && valid(e) {
			return e, nil
		}
		if err != nil && !errors.Is(err, reauth.ErrStoreMiss) {
			return reauth.StoredToken{}, err
		}
		ok, err := store.AcquireLease(ctx, key, holder, 30*time.Second)
		if err != nil {
			return reauth.StoredToken{}, err
		}
		if ok {
			// Another holder may have stored a token since the Load.
			e, err := store.Load(ctx, key)
			if err != nil && !errors.Is(err, reauth.ErrStoreMiss) {
				return reauth.StoredToken{}, err
			}
			if err != nil || !valid(e) {
				access, err := fetch(ctx, client, base, round)
				if err != nil {
					return reauth.StoredToken{}, err
				}
				// The next round revokes (odd) or finds it expired (even).
				life := 30 * time.Minute
				if (round+1)%2 == 1 {
					life = 90 * time.Minute
				}
				if _, _, err := store.CompareAndSwap(ctx, key, e.Version, reauth.StoredToken{
					AccessToken: access, TokenType: "Bearer", Expiry: now.Add(life),
				}); err != nil {
					return reauth.StoredToken{}, err
				}
			}
			if err := store.ReleaseLease(ctx, key, holder); err != nil {
				return reauth.StoredToken{}, err
			}
			continue
		}
		t := time.NewTimer(wait + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return reauth.StoredToken{}, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

func fetch(ctx context.Context, client *http.Client, base string, round int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/token",
		strings.NewReader("grant_type=client_credentials&round="+strconv.Itoa(round)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("fleet: token endpoint: %s", resp.Status)
	}
	return body.AccessToken, nil
}

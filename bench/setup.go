package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/refundgate/refundgate/sandbox"
)

// sandboxKeys is GET /_sandbox/keys.
type sandboxKeys map[string]struct {
	TestSecretKey string `json:"test_secret_key"`
	LiveSecretKey string `json:"live_secret_key"`
	WebhookSecret string `json:"webhook_secret"`
}

// configYAML is the gateway's configuration for one store's run: the store
// (driver sqlite with the file in the data directory, or driver postgres
// with the run's own database), warn logs, one merchant, the Checkout.com,
// Smartpay and Yoco sandbox accounts routed by prefix, and breakers that
// never open under load.
func configYAML(addr, driver, dsn, sandboxURL, apiKey string, keys sandboxKeys) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server: {addr: %q}\n", addr)
	fmt.Fprintf(&b, "store: {driver: %s, dsn: %q}\n", driver, dsn)
	b.WriteString("log: {level: warn, format: json}\n")
	b.WriteString("merchants:\n")
	fmt.Fprintf(&b, "  - id: bench\n    api_keys: [%q]\n    providers: [checkoutcom-sandbox, smartpay-sandbox, yoco-sandbox]\n", apiKey)
	b.WriteString("providers:\n")
	for _, p := range []struct{ name, typ, key, path string }{
		{"checkoutcom-sandbox", "checkoutcom", "checkoutcom", "/checkoutcom/v2"},
		{"smartpay-sandbox", "smartpay", "smartpay", "/smartpay/v1"},
		{"yoco-sandbox", "yoco", "yoco", "/yoco/api"},
	} {
		k := keys[p.key]
		fmt.Fprintf(&b, "  - {name: %s, type: %s, base_url: %q, secret_key: %q, webhook_secret: %q, timeout: 10s,\n", p.name, p.typ, sandboxURL+p.path, k.TestSecretKey, k.WebhookSecret)
		b.WriteString("     breaker: {consecutive_failures: 1000000, open_for: 1s, half_open_requests: 1}}\n")
	}
	b.WriteString("routes:\n")
	b.WriteString("  - {merchant: bench, payment_id_prefix: \"charge_\", provider: checkoutcom-sandbox}\n")
	b.WriteString("  - {merchant: bench, payment_id_prefix: \"payment_\", provider: smartpay-sandbox}\n")
	b.WriteString("  - {merchant: bench, payment_id_prefix: \"ch_\", provider: yoco-sandbox}\n")
	return b.String()
}

// startAll starts a fresh sandbox, writes the configuration for the store
// and starts a fresh gateway on it, then waits for /readyz.
func (h *harness) startAll(ctx context.Context, driver, dsn string) error {
	sbAddr, err := freeAddr()
	if err != nil {
		return err
	}
	sbArgs := []string{"sandbox", "--addr", sbAddr}
	if h.opts.webhooks {
		sbArgs = append(sbArgs, "--webhook-workers", strconv.Itoa(webhookWorkers))
	}
	h.sandbox, err = start("sandbox", h.bin, sbArgs, nil, filepath.Join(h.storeDir, "sandbox.log"))
	if err != nil {
		return err
	}
	h.sandboxURL = "http://" + sbAddr
	if err := waitHTTP(ctx, h.sandbox, h.sandboxURL+"/_sandbox/keys", 20*time.Second); err != nil {
		return err
	}
	var keys sandboxKeys
	if err := getJSON(h.sandboxURL+"/_sandbox/keys", &keys); err != nil {
		return fmt.Errorf("sandbox keys: %w", err)
	}
	if keys[h.opts.provider.Name].TestSecretKey == "" {
		return fmt.Errorf("sandbox keys: no %s test key in %v", h.opts.provider.Name, keys)
	}
	h.providerKey = keys[h.opts.provider.Name].TestSecretKey

	var kb [12]byte
	_, _ = rand.Read(kb[:])
	h.apiKey = "rk_test_bench_" + hex.EncodeToString(kb[:])
	gwAddr, err := freeAddr()
	if err != nil {
		return err
	}
	h.gatewayURL = "http://" + gwAddr
	cfgPath := filepath.Join(h.storeDir, "refundgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(gwAddr, driver, dsn, h.sandboxURL, h.apiKey, keys)), 0o600); err != nil {
		return err
	}
	var env []string
	if h.opts.profile {
		env = append(env, "REFUNDGATE_PPROF_ADDR="+h.opts.pprofAddr)
	}
	gwLog := filepath.Join(h.storeDir, "gateway.log")
	h.gateway, err = start("gateway", h.bin, []string{"serve", "--config", cfgPath}, env, gwLog)
	if err != nil {
		return err
	}
	h.gwLog = &logTail{path: gwLog}
	h.printf("sandbox on %s (pid %d), gateway on %s (pid %d), config %s", h.sandboxURL, h.sandbox.pid(), h.gatewayURL, h.gateway.pid(), cfgPath)
	if err := waitHTTP(ctx, h.gateway, h.gatewayURL+"/readyz", 30*time.Second); err != nil {
		return err
	}
	h.setPhase("setup")
	h.rss = newRSSSampler(h.gateway.pid(), h.gatewayURL+"/metrics", h.getPhase)
	if h.opts.webhooks {
		prov := h.opts.provider
		url := h.gatewayURL + "/v1/webhooks/" + prov.Account
		a, err := do("PUT", h.sandboxURL+"/_sandbox/webhooks", map[string]string{"Content-Type": "application/json"},
			fmt.Sprintf(`{"provider":%q,"url":%q}`, prov.Name, url))
		if err != nil {
			return fmt.Errorf("PUT /_sandbox/webhooks: %w", err)
		}
		if err := a.want("PUT /_sandbox/webhooks", http.StatusOK); err != nil {
			return err
		}
		h.printf("webhooks: the sandbox sends %s's refund webhooks to %s, %d at a time", prov.Name, url, webhookWorkers)
	}
	return nil
}

// webhookWorkers is how many webhooks the sandbox has in flight at once
// with --webhooks.
const webhookWorkers = 64

// webhookLine says what the sandbox's webhook sender did (GET
// /_sandbox/webhooks): deliveries the gateway answered 2xx, attempts that
// failed and were retried, second deliveries of one event, events given up
// on, and events still queued.
func webhookLine(w *sandbox.WebhookStats) string {
	return fmt.Sprintf("%d delivered, %d failed attempts, %d duplicated, %d abandoned, %d still pending",
		w.Delivered, w.Failed, w.Duplicated, w.Abandoned, w.Pending)
}

// webhookStats waits up to a minute for the sandbox to have no webhook
// left to send, and returns its counts (nil if it cannot read them).
func (h *harness) webhookStats(ctx context.Context) *sandbox.WebhookStats {
	var st sandbox.WebhookStats
	for deadline := time.Now().Add(time.Minute); ; {
		if err := getJSON(h.sandboxURL+"/_sandbox/webhooks", &st); err != nil {
			h.printf("webhooks: GET /_sandbox/webhooks: %v", err)
			return nil
		}
		if st.Pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	h.printf("webhooks: %s", webhookLine(&st))
	return &st
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// answer is one HTTP answer read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func do(method, url string, header map[string]string, body string) (*answer, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (a *answer) want(what string, status int) error {
	if a.status != status {
		return fmt.Errorf("%s: got %d, want %d: %s", what, a.status, status, truncate(string(a.body), 600))
	}
	return nil
}

// id is the string field name of an answer that must have status: the
// id of what the request made.
func (a *answer) id(what string, status int, name string) (string, error) {
	if err := a.want(what, status); err != nil {
		return "", err
	}
	var out map[string]any
	_ = json.Unmarshal(a.body, &out)
	v, _ := out[name].(string)
	if v == "" {
		return "", fmt.Errorf("%s: no %s in %s", what, name, truncate(string(a.body), 600))
	}
	return v, nil
}

// replayCase is one key and body the replay scenario sends again and again.
type replayCase struct {
	Key  string `json:"key"`
	Body string `json:"body"`
}

// pool is what the targets are drawn from; it is also written to
// pool.json (for reading by hand) and pool.lua (for the wrk fallback).
type pool struct {
	Payments  []string     `json:"payments"`
	Replays   []replayCase `json:"replays"`
	RefundIDs []string     `json:"refund_ids"`
}

// prepare makes the payment pool, checks each path once by hand (so a
// broken gateway fails here with its answer, not as a wall of load-tool
// errors), and records the replay cases and refund ids for the targets.
func (h *harness) prepare(ctx context.Context) error {
	start := time.Now()
	prov := h.opts.provider
	// Each refund made here has a payment of its own: the provider
	// smoke the first, then the replay cases, then the refunds for reads.
	if need := 1 + h.opts.replayKeys + h.opts.readRefunds; prov.OnePerPayment && h.opts.payments < need {
		return fmt.Errorf("--payments %d: %s take one refund each, and the checks and cases before the load need %d", h.opts.payments, prov.Pool, need)
	}
	ids, err := h.makePayments(ctx, h.opts.payments)
	if err != nil {
		return err
	}
	h.fresh = nil
	h.printf("payment pool: %d %s of %d %s (minor units) in %s", len(ids), prov.Pool, h.opts.value, prov.Currency, time.Since(start).Round(time.Millisecond))

	auth := map[string]string{"Authorization": "Bearer " + h.apiKey}
	create := func(key, body string) (*answer, error) {
		return do("POST", h.gatewayURL+"/v1/refunds", map[string]string{"Authorization": "Bearer " + h.apiKey,
			"Content-Type": "application/json", "Idempotency-Key": key}, body)
	}
	body := func(i int) string { return prov.createBody(ids[i%len(ids)]) }
	// The provider alone.
	smoke := map[string]string{"Authorization": prov.Auth(h.providerKey), "Content-Type": "application/json"}
	if prov.IdempotencyKey {
		smoke["Idempotency-Key"] = "bench-smoke-" + h.runID
	}
	a, err := do("POST", h.sandboxURL+prov.RefundPath(ids[0]), smoke, string(prov.AppendRefund(nil, ids[0], []byte("bench-smoke"))))
	if err != nil {
		return fmt.Errorf("provider smoke: %w", err)
	}
	if a.status != http.StatusOK && a.status != http.StatusCreated && a.status != http.StatusAccepted {
		return a.want("POST sandbox "+prov.RefundPath("{id}"), http.StatusOK)
	}
	// Replay cases: create each, then check that a resend is a replay.
	p := pool{Payments: ids}
	for i := 0; i < h.opts.replayKeys; i++ {
		rc := replayCase{Key: fmt.Sprintf("bench-replay-%s-%d", h.runID, i), Body: body(1 + i)}
		a, err := create(rc.Key, rc.Body)
		if err != nil {
			return fmt.Errorf("create smoke: %w", err)
		}
		if err := a.want("POST /v1/refunds (first)", http.StatusCreated); err != nil {
			return err
		}
		a, err = create(rc.Key, rc.Body)
		if err != nil {
			return fmt.Errorf("replay smoke: %w", err)
		}
		if err := a.want("POST /v1/refunds (replay)", http.StatusCreated); err != nil {
			return err
		}
		if a.header.Get("Idempotent-Replayed") != "true" {
			return fmt.Errorf("POST /v1/refunds (replay): no Idempotent-Replayed: true; headers %v", a.header)
		}
		p.Replays = append(p.Replays, rc)
	}
	// Refunds for the reads.
	p.RefundIDs = make([]string, h.opts.readRefunds)
	if err := parallel(ctx, 8, h.opts.readRefunds, func(i int) error {
		a, err := create(fmt.Sprintf("bench-read-%s-%d", h.runID, i), body(1+h.opts.replayKeys+i))
		if err == nil {
			p.RefundIDs[i], err = a.id("POST /v1/refunds", http.StatusCreated, "id")
		}
		return err
	}); err != nil {
		return err
	}
	if a, err = do("GET", h.gatewayURL+"/v1/refunds/"+p.RefundIDs[0], auth, ""); err != nil {
		return err
	}
	if err := a.want("GET /v1/refunds/{id}", http.StatusOK); err != nil {
		return err
	}
	if a, err = do("GET", h.gatewayURL+"/v1/refunds?limit=20", auth, ""); err != nil {
		return err
	}
	if err := a.want("GET /v1/refunds?limit=20", http.StatusOK); err != nil {
		return err
	}
	h.pool = &p
	b, _ := json.Marshal(p)
	h.poolFile = filepath.Join(h.storeDir, "pool.json")
	if err := os.WriteFile(h.poolFile, b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.storeDir, "pool.lua"), luaPool(p), 0o644); err != nil {
		return err
	}
	h.printf("smoke checks passed: create 201, replay 201 + Idempotent-Replayed, get 200, list 200, provider 2xx; %d replay keys, %d refunds for reads", len(p.Replays), len(p.RefundIDs))
	return nil
}

// makePayments makes n payments of the provider in the sandbox, each of
// --payment-value, 16 at a time, and returns their ids.
func (h *harness) makePayments(ctx context.Context, n int) ([]string, error) {
	prov := h.opts.provider
	body := fmt.Sprintf(`{"provider":%q,"amount":%d,"currency":%q}`, prov.Name, h.opts.value, prov.Currency)
	ids := make([]string, n)
	err := parallel(ctx, 16, n, func(i int) error {
		a, err := do("POST", h.sandboxURL+"/_sandbox/payments", map[string]string{"Content-Type": "application/json"}, body)
		if err == nil {
			ids[i], err = a.id("POST /_sandbox/payments", http.StatusCreated, "payment_id")
		}
		return err
	})
	return ids, err
}

// aheadTargets bounds the targets a stream's feed has written that vegeta
// has not sent yet: the pipe's 1 MiB (growPipe) and feed's buffer, in
// lines of more than 256 bytes.
const aheadTargets = (1<<20 + feedBuffer) / 256

// streamPayments is the most payments a create or provider stream at rate
// over d can take when each payment takes one refund: one a request sent,
// one more as the window closes, and the targets written ahead.
func streamPayments(rate int, d time.Duration) int {
	return expectedRequests(rate, d) + 1 + aheadTargets
}

// freshPayments makes, before spec's run, the payments its create and
// provider streams take when the provider's payments take one refund each
// (a Yoco checkout is refunded whole): never refunded, in h.fresh, taken by
// runLoad, which gives back those no target took. It runs before the rest, so that the gateway and the sandbox are
// idle again when the load starts.
func (h *harness) freshPayments(ctx context.Context, spec loadSpec) error {
	if !h.opts.provider.OnePerPayment {
		return nil
	}
	need := 0
	for _, or := range spec.opRates() {
		if takesPayments(or.Op) {
			need += streamPayments(or.Rate, spec.Duration)
		}
	}
	if need <= len(h.fresh) {
		return nil
	}
	start := time.Now()
	ids, err := h.makePayments(ctx, need-len(h.fresh))
	if err != nil {
		return fmt.Errorf("fresh payments for %s: %w", spec.Name, err)
	}
	h.fresh = append(h.fresh, ids...)
	h.printf("%d fresh %s for %s in %s", len(ids), h.opts.provider.Pool, spec.Name, time.Since(start).Round(time.Millisecond))
	return nil
}

// takesPayments says whether op's requests refund a payment of the pool.
func takesPayments(op string) bool { return op == "create" || op == "provider" }

// parallel runs f(0…n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, workers, n int, f func(i int) error) error {
	var (
		mu   sync.Mutex
		next int
		err  error
		wg   sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if err != nil || next >= n || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if e := f(i); e != nil {
					mu.Lock()
					if err == nil {
						err = e
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

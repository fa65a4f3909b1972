package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
	"github.com/refundgate/refundgate/store/postgres"
)

// TestPostgresEndToEnd runs the refund flow on the PostgreSQL store:
// partial refunds, replays, concurrent over-refund attempts.
func TestPostgresEndToEnd(t *testing.T) {
	dsn := os.Getenv("REFUNDGATE_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("REFUNDGATE_TEST_POSTGRES_DSN is not set: the gateway's PostgreSQL end-to-end test is SKIPPED")
	}
	schema := fmt.Sprintf("rg_gw_%d", time.Now().UnixNano())
	st, err := postgres.OpenSchema(context.Background(), dsn, schema)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() {
		st.Close()
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	e := gatewaytest.Start(t, gatewaytest.Options{Store: st})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	h := map[string]string{"Idempotency-Key": "pg-1"}
	body := map[string]any{"payment_id": pay, "amount": 3000}
	first := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	again := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	if first.Status != 201 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay on postgres:\n%d %s\n%d %s", first.Status, first.Body, again.Status, again.Body)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 1000})
			if r.Status != 201 && r.Status != 422 {
				t.Errorf("concurrent refund: %d %s", r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	var sum int64
	for _, rf := range e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay) {
		sum += rf.Amount
	}
	if sum != 10000 {
		t.Fatalf("provider refunded %d, want exactly the captured 10000", sum)
	}
	got := e.Do(t, req{Method: "GET", Path: "/v1/refunds?limit=100&payment_id=" + pay, Key: acme})
	if n := len(got.JSON(t)["data"].([]any)); n != 8 {
		t.Errorf("%d refunds listed, want 8", n)
	}
}

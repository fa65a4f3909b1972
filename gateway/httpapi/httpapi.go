// Package httpapi serves the refund API of ../shared/API.md over fiber:
// authentication, request ids, problems, strict JSON, validation, and the
// mapping of the gateway's answers to HTTP.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/refundgate/refundgate/gateway"
	"github.com/refundgate/refundgate/normalize"
)

// Options configure the API.
type Options struct {
	Logger *zap.Logger
	// BodyLimit is the largest request body, in bytes (default 65536).
	BodyLimit int
	// Registry collects the HTTP metrics and serves /metrics; nil skips both.
	Registry *prometheus.Registry
	// Ready reports whether the gateway can take requests (store reachable,
	// configuration loaded).
	Ready func(ctx context.Context) error
	// SandboxPayment, when set, serves POST /sandbox/payments.
	SandboxPayment func(provider string, amount int64, currency string) (string, error)
	// OpenAPI is the document served at /openapi.yaml.
	OpenAPI []byte
}

// API holds the handlers.
type API struct {
	svc  *gateway.Service
	opts Options
	log  *zap.Logger
	http *httpMetrics
}

const (
	localMerchant  = "merchant"
	localRequestID = "request_id"
)

// New returns the fiber app serving the API.
func New(svc *gateway.Service, opts Options) *fiber.App {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = 65536
	}
	a := &API{svc: svc, opts: opts, log: opts.Logger}
	if opts.Registry != nil {
		a.http = newHTTPMetrics(opts.Registry)
	}
	app := fiber.New(fiber.Config{
		// The server reads bodies up to four times the limit, so that the
		// handlers answer 413 to a body they have read: refusing one while
		// the client still writes it closes the connection under the
		// client, which then may never see the answer.
		BodyLimit:             4 * opts.BodyLimit,
		DisableStartupMessage: true,
		Immutable:             true,
		ErrorHandler:          a.errorHandler,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	// A panic in a handler becomes a logged 500 problem, not a dead process.
	app.Use(a.requestID, a.logRequest, recover.New())
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", a.ready)
	if opts.Registry != nil {
		app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})))
	}
	app.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(opts.OpenAPI)
	})
	app.Post("/v1/webhooks/:provider", a.webhook)
	if opts.SandboxPayment != nil {
		app.Post("/sandbox/payments", a.sandboxPayment)
	}
	// Authentication is the first handler of each route (not group
	// middleware), so the request log names the route even when it fails.
	auth := a.authenticate
	app.Post("/v1/refunds", auth, a.create)
	app.Get("/v1/refunds", auth, a.list)
	app.Get("/v1/refunds/:id", auth, a.get)
	app.Post("/v1/refunds/:id/approve", auth, a.approve)
	app.Post("/v1/refunds/:id/cancel", auth, a.cancel)
	app.Post("/v1/refunds/:id/sync", auth, a.sync)
	app.Get("/v1/payments/:payment_id/refundable", auth, a.refundable)
	app.Get("/v1/providers", auth, a.providers)
	app.Use(func(c *fiber.Ctx) error {
		return normalize.Errorf(normalize.CodeNotFound, "no route %s %s", c.Method(), c.Path())
	})
	return app
}

// requestID keeps a sane caller X-Request-Id or makes one, and sets it on
// the answer.
func (a *API) requestID(c *fiber.Ctx) error {
	setRequestID(c)
	return c.Next()
}

// setRequestID picks the request's id and sets it on the answer.
func setRequestID(c *fiber.Ctx) string {
	id := c.Get(fiber.HeaderXRequestID)
	if !saneRequestID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = "req_" + hex.EncodeToString(b[:])
	}
	c.Locals(localRequestID, id)
	c.Set(fiber.HeaderXRequestID, id)
	return id
}

// body returns the raw request body of a handler that reads one, or
// refuses it: over the limit (413), not JSON or encoded (415).
func (a *API) body(c *fiber.Ctx) ([]byte, error) {
	b := c.Request().Body()
	if len(b) > a.opts.BodyLimit {
		return nil, a.tooLarge()
	}
	return b, nil
}

func (a *API) tooLarge() error {
	return normalize.Errorf(normalize.CodeBodyTooLarge, "the body is larger than %d bytes", a.opts.BodyLimit)
}

func saneRequestID(id string) bool {
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.' || ch == ':') {
			return false
		}
	}
	return true
}

func requestIDOf(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// logRequest writes one log line per request. It never logs headers or
// bodies, so keys and secrets cannot reach the log.
func (a *API) logRequest(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := a.errorHandler(c, err); herr != nil {
			return herr
		}
	}
	a.logLine(c, c.Route().Path, time.Since(start))
	return nil
}

// logLine is the one log line (and the metrics) of a request.
func (a *API) logLine(c *fiber.Ctx, route string, lat time.Duration) {
	status := c.Response().StatusCode()
	merchant := ""
	if m, ok := c.Locals(localMerchant).(*gateway.Merchant); ok {
		merchant = m.ID
	}
	if a.http != nil {
		a.http.observe(c.Method(), route, status, lat)
	}
	if ce := a.log.Check(zap.InfoLevel, "request"); ce != nil {
		ce.Write(zap.String("method", c.Method()), zap.String("route", route), zap.Int("status", status),
			zap.Duration("latency", lat), zap.String("request_id", requestIDOf(c)), zap.String("merchant_id", merchant))
	}
}

// errorHandler renders any error as a problem. The server also calls it,
// outside the middleware, for a request it refused while reading it (a
// body over the limit): then it sets the request id and writes the
// request's log line itself.
func (a *API) errorHandler(c *fiber.Ctx, err error) error {
	if _, inChain := c.Locals(localRequestID).(string); !inChain {
		setRequestID(c)
		defer a.logLine(c, "", 0)
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			err = a.tooLarge()
		case fiber.StatusNotFound, fiber.StatusMethodNotAllowed:
			err = normalize.Errorf(normalize.CodeNotFound, "no route %s %s", c.Method(), c.Path())
		default:
			err = normalize.Errorf(normalize.CodeMalformedJSON, "%s", fe.Message)
		}
	}
	var ne *normalize.Error
	if !errors.As(err, &ne) {
		a.log.Error("handler", zap.String("request_id", requestIDOf(c)), zap.Error(err))
	}
	return a.send(c, gateway.ProblemOf(err, requestIDOf(c)))
}

// send writes a gateway answer.
func (a *API) send(c *fiber.Ctx, ans gateway.Answer) error {
	c.Set(fiber.HeaderContentType, ans.ContentType)
	if ans.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(ans.RetryAfter))
	}
	if ans.Replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	return c.Status(ans.Status).Send(ans.Body)
}

func (a *API) ready(c *fiber.Ctx) error {
	if a.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		if err := a.opts.Ready(ctx); err != nil {
			a.log.Warn("not ready", zap.Error(err))
			return normalize.Errorf(normalize.CodeNotReady, "not ready: the store is unreachable or no configuration is loaded")
		}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

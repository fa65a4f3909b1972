package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"gopkg.in/yaml.v3"
)

// MaxBody is the most of a provider answer that is read.
const MaxBody = 1 << 20

// excerptLen is how much of a body an Error keeps.
const excerptLen = 512

// NewHTTPClient returns cfg.HTTPClient, or a client with cfg.Timeout (10 s
// when unset) and at most cfg.MaxConns (256 when unset) keep-alive
// connections to the provider, all of which may stay idle: after a burst a
// request waits for a free connection rather than opening one more, so the
// gateway's sockets and memory stay bounded whatever the burst.
func NewHTTPClient(cfg Config) *http.Client {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	conns := cfg.MaxConns
	if conns <= 0 {
		conns = 256
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = conns
	tr.MaxIdleConnsPerHost = conns
	tr.MaxIdleConns = conns
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Call is one HTTP request to a provider.
type Call struct {
	Provider string
	Op       string
	Method   string
	URL      string
	Header   http.Header
	// Body is marshalled as JSON when not nil.
	Body any
	// Secrets are scrubbed from anything kept of the answer.
	Secrets []string
}

// Response is a provider's answer, its body read through MaxBody.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Do sends c with client. It returns an error only when no complete answer
// came back: a *Error whose Outcome is OutcomeNotSent when the request was
// never fully written (so the provider cannot have acted on it) and
// OutcomeUnknown otherwise. HTTP error statuses are returned as a Response
// for the adapter to classify.
func Do(ctx context.Context, client *http.Client, c Call) (*Response, error) {
	var body io.Reader
	if c.Body != nil {
		b, err := json.Marshal(c.Body)
		if err != nil {
			return nil, &Error{Provider: c.Provider, Op: c.Op, Code: normalize.CodeInternal, Outcome: OutcomeNotSent, Cause: err}
		}
		body = bytes.NewReader(b)
	}
	wrote := false
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			wrote = true
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), c.Method, c.URL, body)
	if err != nil {
		return nil, &Error{Provider: c.Provider, Op: c.Op, Code: normalize.CodeInternal, Outcome: OutcomeNotSent, Cause: scrubErr(err, c.Secrets)}
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	if c.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		outcome := OutcomeUnknown
		if !wrote {
			outcome = OutcomeNotSent
		}
		return nil, &Error{Provider: c.Provider, Op: c.Op, Code: normalize.CodeProviderError, Outcome: outcome, Cause: scrubErr(err, c.Secrets)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, &Error{Provider: c.Provider, Op: c.Op, StatusCode: resp.StatusCode, Code: normalize.CodeProviderError, Outcome: OutcomeUnknown, Cause: scrubErr(err, c.Secrets)}
	}
	return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// HTTPError builds the Error for an answer the adapter classified, with a
// scrubbed excerpt of the body and the Retry-After the provider asked for.
func (r *Response) HTTPError(c Call, code normalize.Code, outcome Outcome, providerCode, providerMessage string) *Error {
	e := &Error{
		Provider: c.Provider, Op: c.Op, StatusCode: r.StatusCode, Code: code, Outcome: outcome,
		ProviderCode: Scrub(providerCode, c.Secrets...), ProviderMessage: Scrub(providerMessage, c.Secrets...),
		Body: Scrub(Excerpt(r.Body), c.Secrets...),
	}
	for _, h := range []string{"Cko-Request-Id", "X-Request-Id", "Request-Id"} {
		if v := r.Header.Get(h); v != "" {
			e.RequestID = v
			break
		}
	}
	if s := r.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

// Excerpt returns at most the first 512 bytes of b as text.
func Excerpt(b []byte) string {
	if len(b) > excerptLen {
		b = b[:excerptLen]
	}
	return strings.ToValidUTF8(string(b), "?")
}

// Scrub replaces every secret in s with "[redacted]".
func Scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

type scrubbed struct {
	msg   string
	cause error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.cause }

// scrubErr keeps err reachable (errors.Is on timeouts still works) while
// its text has no secret in it.
func scrubErr(err error, secrets []string) error {
	var ne net.Error
	msg := Scrub(err.Error(), secrets...)
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "timeout: " + msg
	}
	return &scrubbed{msg: msg, cause: err}
}

// DecodeOptions decodes an account's type-specific options into dst
// strictly: an unknown key is an error naming it.
func DecodeOptions(opts map[string]any, dst any) error {
	if len(opts) == 0 {
		return nil
	}
	b, err := yaml.Marshal(opts)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	return nil
}

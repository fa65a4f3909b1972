package sandbox

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// defaultWebhookRetry is the compressed delivery schedule used when
// Options.WebhookRetry is nil (Yoco's real one is immediately, 5 s, 5 min,
// 30 min, 2 h, 5 h, 10 h, 10 h).
var defaultWebhookRetry = []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond, time.Second, 5 * time.Second}

// signFunc computes the signature headers of one delivery attempt of body.
type signFunc func(body []byte, at time.Time) http.Header

type delivery struct {
	provider string
	url      string
	body     []byte
	sign     signFunc
	attempt  int
	dup      bool
	due      time.Time
	seq      uint64
}

type deliveryHeap []*delivery

func (h deliveryHeap) Len() int { return len(h) }
func (h deliveryHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h deliveryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deliveryHeap) Push(x any)   { *h = append(*h, x.(*delivery)) }
func (h *deliveryHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return d
}

// WebhookStats counts webhook delivery attempts since the sandbox started.
type WebhookStats struct {
	Delivered  int64 `json:"delivered"`
	Failed     int64 `json:"failed"`
	Duplicated int64 `json:"duplicated"`
	Abandoned  int64 `json:"abandoned"`
	Pending    int64 `json:"pending"`
}

// webhookQueue delivers webhooks asynchronously: a scheduler moves due
// deliveries to a pool of workers; failed deliveries are rescheduled on the
// retry schedule.
type webhookQueue struct {
	s       *Sandbox
	client  *http.Client
	retry   []time.Duration
	dupRate float64

	mu   sync.Mutex
	urls map[string]string
	h    deliveryHeap
	seq  uint64
	wake chan struct{}
	work chan *delivery
	wg   sync.WaitGroup

	delivered, failed, duplicated, abandoned atomic.Int64
}

func newWebhookQueue(s *Sandbox, opts Options) *webhookQueue {
	q := &webhookQueue{
		s:       s,
		client:  opts.HTTPClient,
		retry:   opts.WebhookRetry,
		dupRate: opts.WebhookDuplicateRate,
		urls:    map[string]string{},
		wake:    make(chan struct{}, 1),
		work:    make(chan *delivery),
	}
	if q.client == nil {
		q.client = &http.Client{Timeout: 5 * time.Second}
	}
	if len(q.retry) == 0 {
		q.retry = defaultWebhookRetry
	}
	n := opts.WebhookWorkers
	if n <= 0 {
		n = 4
	}
	q.wg.Add(n + 1)
	go q.schedule()
	for range n {
		go q.worker()
	}
	return q
}

func (q *webhookQueue) setURL(provider, url string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if url == "" {
		delete(q.urls, provider)
		return
	}
	q.urls[provider] = url
}

func (q *webhookQueue) url(provider string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.urls[provider]
}

func (q *webhookQueue) stats() WebhookStats {
	q.mu.Lock()
	pending := int64(len(q.h))
	q.mu.Unlock()
	return WebhookStats{
		Delivered: q.delivered.Load(), Failed: q.failed.Load(),
		Duplicated: q.duplicated.Load(), Abandoned: q.abandoned.Load(), Pending: pending,
	}
}

// send queues an event for the provider's webhook URL, if one is set.
func (q *webhookQueue) send(provider string, body []byte, sign signFunc) {
	url := q.url(provider)
	if url == "" || q.s.ctx.Err() != nil {
		return
	}
	q.push(&delivery{provider: provider, url: url, body: body, sign: sign, due: time.Now().Add(q.retry[0])})
}

func (q *webhookQueue) push(d *delivery) {
	q.mu.Lock()
	q.seq++
	d.seq = q.seq
	heap.Push(&q.h, d)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *webhookQueue) schedule() {
	defer q.wg.Done()
	ctx := q.s.ctx
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		var next *delivery
		wait := time.Hour
		if len(q.h) > 0 {
			if d := time.Until(q.h[0].due); d <= 0 {
				next = heap.Pop(&q.h).(*delivery)
			} else {
				wait = d
			}
		}
		q.mu.Unlock()
		if next != nil {
			select {
			case q.work <- next:
			case <-ctx.Done():
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-q.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func (q *webhookQueue) worker() {
	defer q.wg.Done()
	ctx := q.s.ctx
	for {
		select {
		case d := <-q.work:
			q.deliver(ctx, d)
		case <-ctx.Done():
			return
		}
	}
}

func (q *webhookQueue) deliver(ctx context.Context, d *delivery) {
	ok := q.post(ctx, d)
	if ctx.Err() != nil {
		return
	}
	if ok {
		q.delivered.Add(1)
		if !d.dup && q.s.chance(q.dupRate) {
			q.duplicated.Add(1)
			q.push(&delivery{provider: d.provider, url: d.url, body: d.body, sign: d.sign, dup: true, due: time.Now()})
		}
		return
	}
	q.failed.Add(1)
	d.attempt++
	if d.attempt >= len(q.retry) {
		q.abandoned.Add(1)
		return
	}
	d.due = time.Now().Add(q.retry[d.attempt])
	q.push(d)
}

func (q *webhookQueue) post(ctx context.Context, d *delivery) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return false
	}
	for k, v := range d.sign(d.body, q.s.now()) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "refundgate-sandbox/"+d.provider)
	resp, err := q.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

func (q *webhookQueue) wait() { q.wg.Wait() }

// WebhookStats returns the webhook delivery counters.
func (s *Sandbox) WebhookStats() WebhookStats { return s.hooks.stats() }

// standardWebhookSigner signs the Standard Webhooks way (Yoco): webhook-id,
// webhook-timestamp (unix seconds) and webhook-signature "v1,<base64
// HMAC-SHA256 of id.timestamp.body>" keyed with the base64-decoded part of a
// whsec_ secret. The id stays the same across attempts.
func standardWebhookSigner(secret, msgID string) signFunc {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		key = []byte(secret)
	}
	return func(body []byte, at time.Time) http.Header {
		ts := strconv.FormatInt(at.Unix(), 10)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msgID + "." + ts + "."))
		m.Write(body)
		h := http.Header{}
		h.Set("webhook-id", msgID)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
		return h
	}
}

// ckoSigner signs the Checkout.com way: CKO-Signature is the lowercase hex
// HMAC-SHA256 of the raw body keyed with the secret key.
func ckoSigner(secretKey string) signFunc {
	return func(body []byte, _ time.Time) http.Header {
		m := hmac.New(sha256.New, []byte(secretKey))
		m.Write(body)
		h := http.Header{}
		h.Set("CKO-Signature", hex.EncodeToString(m.Sum(nil)))
		return h
	}
}

// smartpaySigner signs the Smartpay way: Smartpay-Signature is the hex
// HMAC-SHA256 over timestamp + "." + raw body, keyed with the signing secret
// decoded as base62; Smartpay-Signature-Timestamp is the attempt's time in
// unix milliseconds (the sandbox's choice; Smartpay's objects use
// milliseconds throughout).
func smartpaySigner(secret, eventID, subscriptionID string) signFunc {
	key := base62Decode(secret)
	return func(body []byte, at time.Time) http.Header {
		ts := strconv.FormatInt(at.UnixMilli(), 10)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(ts + "."))
		m.Write(body)
		h := http.Header{}
		h.Set("Smartpay-Signature", hex.EncodeToString(m.Sum(nil)))
		h.Set("Smartpay-Signature-Timestamp", ts)
		h.Set("Smartpay-Event-Id", eventID)
		h.Set("Smartpay-Subscription-Id", subscriptionID)
		return h
	}
}

// base62Decode decodes s as a big-endian base62 number over the alphabet
// A-Z a-z 0-9 ('A' is 0); each leading 'A' is a zero byte, as base-x does.
// Characters outside the alphabet are skipped.
func base62Decode(s string) []byte {
	zeros := 0
	for zeros < len(s) && s[zeros] == 'A' {
		zeros++
	}
	var num []byte // big-endian magnitude
	for i := zeros; i < len(s); i++ {
		d := strings.IndexByte(alnum, s[i])
		if d < 0 {
			continue
		}
		carry := d
		for j := len(num) - 1; j >= 0; j-- {
			carry += int(num[j]) * 62
			num[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			num = append([]byte{byte(carry)}, num...)
			carry >>= 8
		}
	}
	return append(make([]byte, zeros), num...)
}

package api

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// catalogue is the error catalogue of API.md, plus internal_error.
var catalogue = []string{
	"malformed_json", "idempotency_key_required",
	"unauthenticated",
	"not_found", "payment_not_found",
	"idempotency_key_in_use", "invalid_state",
	"body_too_large",
	"unsupported_media_type",
	"validation_failed", "idempotency_key_reused", "no_route", "unknown_provider",
	"partial_refund_unsupported", "amount_exceeds_refundable", "payment_fully_refunded",
	"currency_mismatch", "mode_mismatch", "provider_limit_exceeded", "policy_violation",
	"refund_declined",
	"rate_limited",
	"provider_error", "provider_auth_failed",
	"provider_unavailable", "not_ready",
	"internal_error",
}

// endpoints is the Endpoints table of API.md and POST /sandbox/payments.
var endpoints = map[string][]string{
	"/v1/refunds":                          {"get", "post"},
	"/v1/refunds/{id}":                     {"get"},
	"/v1/refunds/{id}/approve":             {"post"},
	"/v1/refunds/{id}/cancel":              {"post"},
	"/v1/refunds/{id}/sync":                {"post"},
	"/v1/payments/{payment_id}/refundable": {"get"},
	"/v1/webhooks/{provider}":              {"post"},
	"/v1/providers":                        {"get"},
	"/healthz":                             {"get"},
	"/readyz":                              {"get"},
	"/metrics":                             {"get"},
	"/openapi.yaml":                        {"get"},
	"/sandbox/payments":                    {"post"},
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func load(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// dig walks doc by keys and fails the test when a step is missing.
func dig(t *testing.T, doc any, keys ...string) any {
	t.Helper()
	cur := doc
	for i, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s is not a mapping", strings.Join(keys[:i], "."))
		}
		if cur, ok = m[k]; !ok {
			t.Fatalf("%s missing", strings.Join(keys[:i+1], "."))
		}
	}
	return cur
}

func stringList(t *testing.T, v any, what string) []string {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%s is not a list", what)
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			t.Fatalf("%s[%d] = %v, not a string", what, i, e)
		}
		out[i] = s
	}
	return out
}

func TestVersion(t *testing.T) {
	doc := load(t)
	if v := dig(t, doc, "openapi"); v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}
	if v := dig(t, doc, "info", "title"); v != "refundgate" {
		t.Errorf("info.title = %v", v)
	}
	if v := dig(t, doc, "info", "version"); v != "0.1.0" {
		t.Errorf("info.version = %v", v)
	}
}

func TestEndpoints(t *testing.T) {
	doc := load(t)
	paths := dig(t, doc, "paths").(map[string]any)
	for path, want := range endpoints {
		item, ok := paths[path].(map[string]any)
		if !ok {
			t.Errorf("path %s missing", path)
			continue
		}
		var got []string
		for _, m := range httpMethods {
			if _, ok := item[m]; ok {
				got = append(got, m)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s methods = %v, want %v", path, got, want)
		}
	}
	for path := range paths {
		if _, ok := endpoints[path]; !ok {
			t.Errorf("path %s is not in API.md", path)
		}
	}
}

func TestErrorCatalogue(t *testing.T) {
	doc := load(t)
	want := slices.Clone(catalogue)
	sort.Strings(want)
	for _, schema := range []string{"Problem", "ErrorCode"} {
		keys := []string{"components", "schemas", schema}
		if schema == "Problem" {
			keys = append(keys, "properties", "code")
		}
		got := stringList(t, dig(t, doc, append(keys, "enum")...), schema+" enum")
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s code enum = %v\nwant %v", schema, got, want)
		}
	}
}

func TestCreateRefundRequestStrict(t *testing.T) {
	doc := load(t)
	req := dig(t, doc, "components", "schemas", "CreateRefundRequest")
	if v := dig(t, req, "additionalProperties"); v != false {
		t.Errorf("CreateRefundRequest.additionalProperties = %v, want false", v)
	}
	if v := dig(t, req, "properties", "line_items", "items"); v == nil {
		t.Fatal("line_items.items missing")
	}
	if v := dig(t, doc, "components", "schemas", "LineItem", "additionalProperties"); v != false {
		t.Errorf("LineItem.additionalProperties = %v, want false", v)
	}
	if got := stringList(t, dig(t, req, "required"), "required"); !slices.Equal(got, []string{"payment_id"}) {
		t.Errorf("CreateRefundRequest.required = %v", got)
	}
}

func TestIdempotencyKeyRequired(t *testing.T) {
	doc := load(t)
	if v := dig(t, doc, "components", "parameters", "IdempotencyKey", "required"); v != true {
		t.Errorf("Idempotency-Key required = %v", v)
	}
	params, _ := dig(t, doc, "paths", "/v1/refunds", "post", "parameters").([]any)
	found := false
	for _, p := range params {
		if m, ok := p.(map[string]any); ok && m["$ref"] == "#/components/parameters/IdempotencyKey" {
			found = true
		}
	}
	if !found {
		t.Error("POST /v1/refunds does not take Idempotency-Key")
	}
}

func TestCreateRefundStatuses(t *testing.T) {
	doc := load(t)
	responses := dig(t, doc, "paths", "/v1/refunds", "post", "responses").(map[string]any)
	for _, s := range []string{"201", "202", "400", "401", "404", "409", "413", "415", "422", "429", "502", "503"} {
		if _, ok := responses[s]; !ok {
			t.Errorf("POST /v1/refunds has no %s answer", s)
		}
	}
	dig(t, responses, "503", "headers", "Retry-After")
}

func TestWebhookHasNoBearerAuth(t *testing.T) {
	doc := load(t)
	sec, ok := dig(t, doc, "paths", "/v1/webhooks/{provider}", "post", "security").([]any)
	if !ok || len(sec) != 0 {
		t.Errorf("webhook security = %v, want []", sec)
	}
}

// TestRefsResolve checks every local $ref points at something, and that no
// key is left without a value (an unquoted comma in a flow mapping).
func TestRefsResolve(t *testing.T) {
	doc := load(t)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if e == nil {
					t.Errorf("%s/%s has no value", at, k)
				}
				if k == "$ref" {
					ref, _ := e.(string)
					target, ok := strings.CutPrefix(ref, "#/")
					if !ok {
						t.Errorf("%s: $ref %q is not local", at, ref)
						continue
					}
					var cur any = doc
					for _, part := range strings.Split(target, "/") {
						m, ok := cur.(map[string]any)
						if !ok {
							cur = nil
							break
						}
						cur = m[part]
					}
					if cur == nil {
						t.Errorf("%s: $ref %q does not resolve", at, ref)
					}
					continue
				}
				walk(e, at+"/"+k)
			}
		case []any:
			for _, e := range v {
				walk(e, at)
			}
		}
	}
	walk(doc, "#")
}

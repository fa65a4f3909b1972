package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"

	"github.com/refundgate/refundgate/normalize"
)

// createBody is the body of POST /v1/refunds.
type createBody struct {
	PaymentID   string            `json:"payment_id" validate:"required,max=255,printascii"`
	Provider    string            `json:"provider" validate:"omitempty,max=64"`
	Amount      *int64            `json:"amount" validate:"omitempty,min=1"`
	Currency    string            `json:"currency" validate:"omitempty,iso4217"`
	Reason      string            `json:"reason" validate:"omitempty,oneof=requested_by_customer duplicate fraudulent other"`
	Description *string           `json:"description" validate:"omitempty,max=255"`
	Reference   *string           `json:"reference" validate:"omitempty,max=64"`
	Metadata    map[string]string `json:"metadata" validate:"omitempty,max=20,dive,keys,min=1,max=40,endkeys,max=500"`
	LineItems   []lineItem        `json:"line_items" validate:"omitempty,max=100,dive"`
}

type lineItem struct {
	ID       string `json:"id" validate:"required,max=255"`
	Amount   *int64 `json:"amount" validate:"omitempty,min=0"`
	Quantity *int64 `json:"quantity" validate:"omitempty,min=1"`
}

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	return v
}()

// messages say each rule in words.
var messages = map[string]string{
	"required":   "is required",
	"min":        "must be at least %s",
	"max":        "must be at most %s",
	"oneof":      "must be one of: %s",
	"iso4217":    "must be an uppercase ISO 4217 currency code",
	"printascii": "must be printable ASCII",
}

// checkContentType refuses a body that is not JSON, or that is encoded
// (gzip and the like): bodies are read raw, so a small compressed body can
// never grow past the body limit once decoded.
func checkContentType(c *fiber.Ctx) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != "application/json" {
		return normalize.Errorf(normalize.CodeUnsupportedMediaType, "send the body as Content-Type: application/json")
	}
	if ce := c.Get(fiber.HeaderContentEncoding); ce != "" && !strings.EqualFold(ce, "identity") {
		return normalize.Errorf(normalize.CodeUnsupportedMediaType, "send the body without Content-Encoding (got %q)", ce)
	}
	return nil
}

// decodeStrict decodes one JSON value into dst, refusing unknown fields,
// wrong types and trailing data with errors that name the field. Object
// keys must match the field names exactly and appear once: encoding/json
// alone would take "Amount" for amount, and the last of two "amount"s.
func decodeStrict(body []byte, dst any) error {
	if err := exactKeys(body, reflect.TypeOf(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return normalize.Errorf(normalize.CodeMalformedJSON, "the body must be a single JSON object")
	}
	return nil
}

func jsonProblem(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return normalize.Errorf(normalize.CodeMalformedJSON, "the body must be a JSON object")
		}
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Int64, reflect.Int:
			want = "an integer (minor units, no decimals)"
		case reflect.Pointer:
			want = "a " + te.Type.Elem().Kind().String()
			if k := te.Type.Elem().Kind(); k == reflect.Int64 {
				want = "an integer (minor units, no decimals)"
			}
		case reflect.Map, reflect.Struct:
			want = "an object"
		case reflect.Slice:
			want = "an array"
		}
		return normalize.FieldErr(normalize.CodeValidationFailed, field, "type", fmt.Sprintf("%s must be %s, not %s", field, want, te.Value))
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(msg, `"`)
		return normalize.FieldErr(normalize.CodeValidationFailed, field, "unknown_field", fmt.Sprintf("unknown field %q", field))
	}
	return normalize.Errorf(normalize.CodeMalformedJSON, "the body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// validateStruct runs the struct's rules and lists every broken one.
func validateStruct(v any) error {
	err := validate.Struct(v)
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return err
	}
	out := &normalize.Error{Code: normalize.CodeValidationFailed}
	for _, fe := range ves {
		field := fe.Namespace()
		if _, rest, ok := strings.Cut(field, "."); ok {
			field = rest
		}
		msg := "is invalid"
		if tmpl, ok := messages[fe.Tag()]; ok {
			msg = tmpl
			if strings.Contains(tmpl, "%s") {
				msg = fmt.Sprintf(tmpl, fe.Param())
			}
		}
		if fe.Tag() == "max" && fe.Kind() == reflect.String {
			msg = fmt.Sprintf("must be at most %s characters", fe.Param())
		}
		if (fe.Tag() == "max" || fe.Tag() == "min") && (fe.Kind() == reflect.Map || fe.Kind() == reflect.Slice) {
			msg = fmt.Sprintf("must have at most %s entries", fe.Param())
			if fe.Tag() == "min" {
				msg = fmt.Sprintf("must have at least %s entries", fe.Param())
			}
		}
		out.Fields = append(out.Fields, normalize.FieldError{Field: field, Code: fe.Tag(), Message: field + " " + msg})
	}
	out.Param = out.Fields[0].Field
	out.Message = out.Fields[0].Message
	if n := len(out.Fields); n > 1 {
		out.Message += fmt.Sprintf(" (and %d more)", n-1)
	}
	return out
}

// validKey is the rule for an Idempotency-Key: 1–255 printable ASCII.
func validKey(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// exactKeys walks body as a value of type t and refuses a key that is not
// exactly a field name of its struct (the unknown-field error names it)
// and a key that appears twice in one object. Syntax errors are left to the
// decoder, which words them better.
func exactKeys(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := walkKeys(dec, t, "", 0)
	var fe *normalize.Error
	if errors.As(err, &fe) {
		return err
	}
	return nil
}

// maxDepth bounds how deeply a body may nest; no request needs more than 3.
const maxDepth = 32

func walkKeys(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return normalize.Errorf(normalize.CodeMalformedJSON, "the body nests deeper than %d levels", maxDepth)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			field := key
			if path != "" {
				field = path + "." + key
			}
			if seen[key] {
				return normalize.FieldErr(normalize.CodeValidationFailed, field, "duplicate_field",
					fmt.Sprintf("field %q appears more than once", field))
			}
			seen[key] = true
			var elem reflect.Type
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct:
				f, ok := jsonFields(t)[key]
				if !ok {
					return normalize.FieldErr(normalize.CodeValidationFailed, field, "unknown_field", fmt.Sprintf("unknown field %q", field))
				}
				elem = f
			case t.Kind() == reflect.Map:
				elem = t.Elem()
			}
			if err := walkKeys(dec, elem, field, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

// fieldCache maps a struct type to its JSON field names and types.
var fieldCache sync.Map

func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}

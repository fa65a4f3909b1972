// Package api holds refundgate's HTTP contract as an OpenAPI 3.1 document,
// embedded so the gateway can serve it at GET /openapi.yaml and tests can
// check the handlers against it.
package api

import _ "embed"

// OpenAPI is the contract of API.md as OpenAPI 3.1 YAML.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Package carbondesk holds what the binary embeds from the generated code
// that is not Go: the merged OpenAPI v2 description of the REST gateway,
// which buf writes to gen/openapiv2 (a folder buf empties on every run, so
// the Go file that embeds it lives here, at the module root). The gateway
// (services/gateway) serves it at /openapi.json.
package carbondesk

import _ "embed"

// OpenAPI is gen/openapiv2/carbondesk.swagger.json: every REST path of the
// gateway, generated from the protos and proto/carbondesk/gateway/http.yaml.
//
//go:embed gen/openapiv2/carbondesk.swagger.json
var OpenAPI []byte

// Package seeds embeds the demo data in seeds/ so the single binary can load
// it on first start wherever it runs. Each service owns a folder
// (seeds/registry/...) and reads its own files from FS.
package seeds

import "embed"

// FS holds every seed file, by path relative to seeds/.
//
//go:embed registry catalog matching talent
var FS embed.FS

// Package console holds CarbonDesk's web console: plain HTML, CSS and
// JavaScript modules, embedded in the binary and served by the gateway at
// the site root. There is no build step and nothing is fetched from a CDN:
// what is in this folder is what the browser gets. The console talks to the
// desk only through the gateway's REST/JSON paths
// (proto/carbondesk/gateway/http.yaml) with the bearer token in the
// Authorization header.
//
// Layout: index.html (shell), style.css, app.js (hash router, sign-in,
// header), api.js (fetch wrapper, live feed reader), i18n.js (zh-CN and
// English text and enum labels), format.js (money, dates, rates), dom.js
// (element builder), charts.js (SVG bar charts), csv.js (CSV export), and
// one module per role under views/.
//
// The headless-browser tests in browser_test.go start the whole desk with
// internal/app and drive the console in Chromium.
package console

import "embed"

// Files is the console's static content, index.html at its root.
//
//go:embed index.html style.css favicon.svg *.js views/*.js
var Files embed.FS

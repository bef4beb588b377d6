package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
	"github.com/carbondesk/carbondesk/internal/auth"
)

// The headless-browser tests run the whole desk in-process (app.Run with the
// embedded NATS and store, demo seeds, the gateway on a free port) and drive
// the console in Debian's Chromium with chromedp, in separate browser
// contexts for staff, an enterprise and an institution, as three people at
// three machines would. Waits poll the page with timeouts; nothing sleeps
// for correctness.
//
// Chromium: $CARBONDESK_CHROMIUM, /usr/bin/chromium or chromium on the PATH.
// Without it the tests skip, except in CI (CI set), where they fail:
// .ci/run installs it.
//
// Screenshots go to $CARBONDESK_ARTIFACTS/screenshots when that is set, to
// ./artifacts/screenshots at the repository root in CI, and otherwise to the
// test's artifact directory (kept with 'go test -artifacts'); the log says
// where.

// maxFeedLatency is the "within a second": from the enterprise's
// post to the row in the staff feed.
const maxFeedLatency = time.Second

// seeded demo identities (seeds/): district staff and the steel enterprise
// E1, which posts a pledge-financing demand like its seeded one.
const (
	enterpriseIdentity = "enterprise:91420106MAEQ000373"
)

func TestConsoleWorkflows(t *testing.T) {
	chromium := chromiumPath(t)
	desk := startDesk(t)
	shots := screenshotDir(t)
	browser := startBrowser(t, chromium)

	staff := desk.open(t, browser, "staff", shots)
	ent := desk.open(t, browser, "enterprise", shots)
	inst := desk.open(t, browser, "institution", shots)

	// Sign-in: staff and the enterprise pick demo identities.
	staff.devSignIn("staff")
	ent.devSignIn(enterpriseIdentity)
	if got := staff.str(`document.querySelector('#who').dataset.role`); got != "staff" {
		t.Fatalf("staff signed in as %q", got)
	}

	// The staff overview: the feed is live and the figures are read.
	staff.waitTrue("the live feed connects", `document.querySelector('#feed-status')?.dataset.status === 'live'`)
	staff.waitTrue("the KPIs load", `!!document.querySelector('#kpi-openDemands')`)
	open0 := staff.num(`+document.querySelector('#kpi-openDemands').dataset.value`)
	staff.shot("01-staff-overview-zh")

	// The enterprise's form shows the desk's field violations next to the
	// fields they are about.
	ent.click(`#demand-new`)
	ent.waitVisible(`#demand-form`)
	ent.setValue(`#demand-form [name=region]`, "4201")
	ent.setValue(`#demand-form [name=sector]`, "SECTOR_STEEL")
	ent.click(`#demand-submit`)
	ent.waitTrue("the form shows the region violation", `!!document.querySelector('#demand-form [data-field=region] .field-error')?.textContent`)
	ent.waitTrue("the form shows the amount violation", `!!document.querySelector('#demand-form [data-field=amount_yuan] .field-error')?.textContent`)
	ent.waitVisible(`#demand-form [data-testid=form-error]`)
	ent.shot("02-enterprise-demand-violations-zh")

	// The enterprise posts a valid demand; the staff feed shows its first
	// proposal without a reload, within a second.
	ent.setValue(`#demand-form [name=region]`, "420106")
	ent.setValue(`#demand-form [name=amount_yuan]`, "20000000")
	ent.setValue(`#demand-form [name=term_months]`, "12")
	ent.setValue(`#demand-form [name=cea_tonnes]`, "800000")
	ent.setValue(`#demand-form [name=annual_emissions_tonnes]`, "2600000")
	ent.setValue(`#demand-form [name=description]`, "browser test: allowance pledge for a furnace retrofit")
	ent.click(`#cat-CARBON_PLEDGE`)
	staffRowsBefore := staff.num(`document.querySelectorAll('[data-testid=feed-row]').length`)
	clicked := time.Now()
	ent.click(`#demand-submit`)
	ent.waitVisible(`[data-testid=demand-detail]`)
	demandID := ent.str(`document.querySelector('[data-testid=demand-detail]').dataset.demandId`)
	row := fmt.Sprintf(`[data-testid=feed-row][data-demand-id=%q]`, demandID)
	staff.waitVisible(row)
	seen := time.Since(clicked)
	postStart := ent.num(`window.__lastPost.startedAt`)
	received := staff.num(fmt.Sprintf(`Math.min(...Array.from(document.querySelectorAll('%s')).map(r => +r.dataset.receivedAt))`, row))
	latency := time.Duration(received-postStart) * time.Millisecond
	t.Logf("feed latency: %v from the enterprise's POST to the row in the staff feed (browser clocks); %v from the click as the test saw it", latency, seen.Round(time.Millisecond))
	if latency > maxFeedLatency || latency < 0 {
		t.Errorf("feed latency %v, want within %v", latency, maxFeedLatency)
	}
	if n := staff.num(`document.querySelectorAll('[data-testid=feed-row]').length`); n <= staffRowsBefore {
		t.Errorf("staff feed has %v rows after the post, %v before: no new row", n, staffRowsBefore)
	}
	staff.waitTrue("the open-demands KPI counts the new demand", fmt.Sprintf(`+document.querySelector('#kpi-openDemands')?.dataset.value === %v`, open0+1))
	rate1 := staff.num(`+document.querySelector('#kpi-matchRate').dataset.value`)
	staff.shot("03-staff-feed-new-demand-zh")

	// The enterprise sees its ranked matches with their reasons, and can ask
	// why any product does or does not fit.
	ent.waitVisible(`[data-testid=ent-match][data-rank="1"]`)
	matchID := ent.str(`document.querySelector('[data-testid=ent-match][data-rank="1"]').dataset.matchId`)
	instCode := ent.str(`document.querySelector('[data-testid=ent-match][data-rank="1"]').dataset.institutionCode`)
	instID := ent.str(`document.querySelector('[data-testid=ent-match][data-rank="1"]').dataset.institutionId`)
	if n := ent.num(`document.querySelectorAll('[data-testid=ent-match] [data-testid=reasons] li').length`); n == 0 {
		t.Error("the enterprise's matches show no reasons")
	}
	ent.waitTrue("the explain form lists products", `document.querySelectorAll('#explain-product option').length > 2`)
	ent.setValue(`#explain-product`, ent.str(`document.querySelectorAll('#explain-product option')[2].value`))
	ent.click(`#explain-submit`)
	ent.waitVisible(`[data-testid=explain] [data-testid=reasons]`)
	ent.shot("04-enterprise-demand-matches-zh")

	// The matched institution signs in with a pasted token and accepts the
	// proposal: the staff feed shows the acceptance and the match rate rises.
	inst.tokenSignIn(desk.mint(t, auth.Caller{Role: auth.Institution, Org: instCode, Subject: "browser-test-institution"}))
	inst.click(`[data-testid=nav-inst-matches]`)
	card := fmt.Sprintf(`[data-testid=match-row][data-match-id=%q]`, matchID)
	inst.waitVisible(card + ` [data-testid=accept]`)
	inst.waitTrue("the match cards have their demands", `document.querySelectorAll('#matches-body [data-loading]').length === 0`)
	inst.shot("05-institution-matches-zh")
	// The institution presses on the Accepted tab just as the acceptance
	// comes back and redraws the list; the click still counts.
	inst.holdAnswer(":accept")
	inst.click(card + ` [data-testid=accept]`)
	inst.pressWhile(`#tab-accepted`, func() {
		inst.str(`window.__releaseAnswer()`)
		inst.waitTrue("the acceptance is drawn", `!!document.querySelector('[data-testid=toast].toast-ok')`)
	})
	inst.waitVisible(card + `[data-state=ACCEPTED]`)
	staff.waitVisible(fmt.Sprintf(`[data-testid=feed-row][data-match-id=%q][data-event-type=accepted]`, matchID))
	staff.waitTrue("the match rate KPI rises", fmt.Sprintf(`+document.querySelector('#kpi-matchRate')?.dataset.value > %v`, rate1))
	completed0 := staff.num(`+document.querySelector('#kpi-completed').dataset.value`)

	// The enterprise follows the status live and confirms; the institution
	// reports the deal; the outcome reaches the staff feed and the figures.
	entCard := fmt.Sprintf(`[data-testid=ent-match][data-match-id=%q]`, matchID)
	ent.waitVisible(entCard + `[data-state=ACCEPTED] [data-testid=confirm]`)
	ent.click(entCard + ` [data-testid=confirm]`)
	ent.waitVisible(entCard + `[data-state=CONFIRMED]`)
	inst.click(`#tab-confirmed`)
	inst.waitVisible(card + ` [data-testid=report-outcome]`)
	inst.click(card + ` [data-testid=report-outcome]`)
	inst.waitVisible(`#outcome-form`)
	inst.setValue(`#outcome-form [name="completed.amount_yuan"]`, "18000000")
	inst.setValue(`#outcome-form [name="completed.rate_bps"]`, "455")
	inst.setValue(`#outcome-form [name="completed.term_months"]`, "12")
	inst.setValue(`#outcome-form [name="completed.tonnes"]`, "600000")
	inst.click(`#outcome-submit`)
	inst.do("the outcome dialog closes", chromedp.WaitNotPresent(chromedp.CSS(`#outcome-form`)))
	inst.click(`#tab-done`)
	inst.waitVisible(card + `[data-state=COMPLETED]`)
	staff.waitVisible(fmt.Sprintf(`[data-testid=feed-row][data-match-id=%q][data-event-type=completed]`, matchID))
	staff.waitTrue("the completed-volume KPI grows by the deal", fmt.Sprintf(`+document.querySelector('#kpi-completed')?.dataset.value === %v`, completed0+18000000))
	ent.waitVisible(entCard + `[data-state=COMPLETED]`)
	staff.shot("06-staff-overview-after-deal-zh")

	// The institution files a product as a draft and publishes it.
	inst.click(`[data-testid=nav-inst-products]`)
	inst.click(`#product-new`)
	inst.waitVisible(`#product-form`)
	inst.setValue(`#product-form [name=name_zh]`, "浏览器测试碳配额质押贷")
	inst.setValue(`#product-form [name=name_en]`, "Browser-test CEA pledge loan")
	inst.setValue(`#product-form [name=category]`, "PRODUCT_CATEGORY_CARBON_PLEDGE")
	inst.click(`#product-form input[name=demand_kinds][value=DEMAND_KIND_FINANCING]`)
	inst.setValue(`#product-form [name="amount.min_yuan"]`, "1000000")
	inst.setValue(`#product-form [name="amount.max_yuan"]`, "50000000")
	inst.setValue(`#product-form [name="term.min_months"]`, "6")
	inst.setValue(`#product-form [name="term.max_months"]`, "36")
	inst.setValue(`#product-form [name="price.annual_rate.min_bps"]`, "380")
	inst.setValue(`#product-form [name="price.annual_rate.max_bps"]`, "460")
	inst.setValue(`#product-form [name="collateral.asset"]`, "CARBON_ASSET_CEA")
	inst.setValue(`#product-form [name="collateral.pledge_rate_bps"]`, "6000")
	inst.setValue(`#product-form [name="contact.name"]`, "测试联系人")
	inst.setValue(`#product-form [name="contact.phone"]`, "027-8765 4321")
	inst.click(`#product-save`)
	inst.do("the product form closes", chromedp.WaitNotPresent(chromedp.CSS(`#product-form`)))
	newProduct := `Array.from(document.querySelectorAll('[data-testid=my-product-row]')).find(r => r.textContent.includes('浏览器测试碳配额质押贷'))`
	inst.waitTrue("the new product is a draft", newProduct+`?.dataset.state === 'DRAFT'`)
	inst.do("publish the new product", chromedp.Evaluate[chromedp.Void](newProduct+`.querySelector('[data-testid=publish]').click()`))
	inst.waitTrue("the new product is published", newProduct+`?.dataset.state === 'PUBLISHED'`)
	inst.shot("07-institution-products-zh")

	// Both languages: staff switch to English and back without reloading.
	staff.click(`#lang-toggle`)
	staff.waitTrue("the page is in English", `document.querySelector('#page-title')?.textContent === 'Matching overview' && document.documentElement.lang === 'en'`)
	staff.waitTrue("the KPIs are redrawn in English", `!!document.querySelector('#kpi-completed .kpi-value')?.textContent.startsWith('¥')`)
	staff.shot("08-staff-overview-en")
	staff.click(`#lang-toggle`)
	staff.waitTrue("the page is in Chinese again", `document.querySelector('#page-title')?.textContent === '对接总览'`)

	// Suspension: the enterprise sees the institution's pledge products;
	// staff suspend the institution with a reason; the products leave the
	// enterprise's view.
	ent.click(`[data-testid=nav-ent-products]`)
	ent.waitVisible(`[data-testid=products]`)
	ent.setValue(`#browse-filters [name=category]`, "PRODUCT_CATEGORY_CARBON_PLEDGE")
	ent.click(`#browse-apply`)
	productRows := fmt.Sprintf(`document.querySelectorAll('[data-testid=product-row][data-institution-id=%q]').length`, instID)
	ent.waitTrue("the institution's products are on offer", productRows+` > 0`)
	ent.shot("09-enterprise-products-before-suspension-zh")

	staff.click(`[data-testid=nav-staff-directory]`)
	instRow := fmt.Sprintf(`[data-testid=inst-row][data-institution-id=%q]`, instID)
	staff.waitVisible(instRow + ` [data-testid=suspend]`)
	staff.click(instRow + ` [data-testid=suspend]`)
	staff.waitVisible(`#dialog-reason`)
	staff.setValue(`#dialog-reason`, "browser test: annual report overdue")
	staff.click(`#dialog-confirm`)
	staff.waitVisible(instRow + `[data-state=SUSPENDED]`)
	staff.shot("10-staff-directory-suspended-zh")

	// The catalog pauses the products when it hears of the suspension; the
	// enterprise refreshes its list until they are gone.
	deadline := time.Now().Add(15 * time.Second)
	for {
		before := ent.str(`document.querySelector('#browse-body').dataset.loadedAt || ''`)
		ent.click(`#products-refresh`)
		ent.waitTrue("the product list reloads", fmt.Sprintf(`(document.querySelector('#browse-body').dataset.loadedAt || '') !== %q`, before))
		if ent.num(productRows) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the suspended institution's products still show to the enterprise after 15 s")
		}
		time.Sleep(200 * time.Millisecond) // pace the refreshes; the loop's exit is the check above
	}
	ent.shot("11-enterprise-products-after-suspension-zh")

	// Tablet width: the enterprise's product list still fits.
	ent.do("tablet viewport", chromedp.EmulateViewport(820, 1180))
	ent.waitVisible(`[data-testid=products]`)
	ent.shot("12-enterprise-products-tablet-zh")

	// Every text had a translation, and no token ever sat in a URL.
	for _, tb := range []*tab{staff, ent, inst} {
		if missing := tb.str(`JSON.stringify(window.__i18nMissing || [])`); missing != "[]" {
			t.Errorf("%s: text keys without a translation: %s", tb.name, missing)
		}
		if href := tb.str(`location.href`); strings.Contains(href, "eyJ") {
			t.Errorf("%s: a token in the URL: %s", tb.name, href)
		}
	}
}

// TestConsoleScreens visits every screen of each role in both languages,
// checks that each renders without an error box or a missing translation,
// and saves a screenshot of each.
func TestConsoleScreens(t *testing.T) {
	chromium := chromiumPath(t)
	desk := startDesk(t)
	shots := screenshotDir(t)
	browser := startBrowser(t, chromium)

	roles := []struct {
		identity string
		pages    []string
		ready    map[string]string // page -> a selector that shows it has loaded
	}{
		{"staff", []string{"staff", "staff/review", "staff/directory", "staff/overdue", "staff/talent", "staff/reports"}, map[string]string{
			"staff": `[data-testid=feed-row]`, "staff/review": `[data-testid=review-row]`, "staff/directory": `[data-testid=inst-row]`,
			"staff/overdue": `[data-testid=attention]`, "staff/talent": `[data-testid=event-row]`, "staff/reports": `[data-testid=report-kpis]`,
		}},
		{"institution:91420106MA60H1TDF5", []string{"inst", "inst/products", "inst/matches", "inst/events"}, map[string]string{
			"inst": `[data-testid=profile]`, "inst/products": `[data-testid=my-product-row]`, "inst/matches": `#tab-all`, "inst/events": `[data-testid=my-event]`,
		}},
		{enterpriseIdentity, []string{"ent", "ent/products", "ent/events"}, map[string]string{
			"ent": `[data-testid=demand-row]`, "ent/products": `[data-testid=product-row]`, "ent/events": `[data-testid=open-event]`,
		}},
	}
	for _, lang := range []string{"zh", "en"} {
		for _, r := range roles {
			tb := desk.open(t, browser, strings.SplitN(r.identity, ":", 2)[0]+"-"+lang, shots)
			tb.setLang(lang)
			tb.devSignIn(r.identity)
			for _, p := range r.pages {
				tb.do("open "+p, chromedp.Navigate(desk.base+"/#/"+p))
				tb.waitVisible(r.ready[p])
				tb.waitTrue("no view is still loading", `document.querySelectorAll('#main .loading').length === 0`)
				if n := tb.num(`document.querySelectorAll('#main .error-box:not([hidden])').length`); n > 0 {
					t.Errorf("%s %s (%s): an error shows: %s", r.identity, p, lang, tb.str(`document.querySelector('#main .error-box:not([hidden])').textContent`))
				}
				tb.shot(fmt.Sprintf("screen-%s-%s-%s", lang, strings.SplitN(r.identity, ":", 2)[0], strings.ReplaceAll(p, "/", "-")))
			}
			if missing := tb.str(`JSON.stringify(window.__i18nMissing || [])`); missing != "[]" {
				t.Errorf("%s (%s): text keys without a translation: %s", r.identity, lang, missing)
			}
			if lang == "en" {
				// No Chinese-only label slipped into the English chrome.
				if nav := tb.str(`document.querySelector('.nav').textContent`); regexp.MustCompile(`\p{Han}`).MatchString(nav) {
					t.Errorf("%s: English navigation holds Chinese: %q", r.identity, nav)
				}
			}
		}
	}

	// A CSV export is built in the browser, with a BOM-less text kept for
	// the test and a header row in the chosen language.
	tb := desk.open(t, browser, "staff-csv", shots)
	tb.devSignIn("staff")
	tb.do("open reports", chromedp.Navigate(desk.base+"/#/staff/reports"))
	tb.click(`[data-testid=report-institutions]`)
	tb.waitTrue("the CSV is built", `!!window.__lastCsv`)
	csv := tb.str(`window.__lastCsv.text`)
	if !strings.HasPrefix(csv, "统一社会信用代码,") || strings.Count(csv, "\r\n") < 10 {
		t.Errorf("institutions CSV starts %q with %d lines", firstLine(csv), strings.Count(csv, "\r\n"))
	}
}

// TestConsoleFeedReconnects stops the desk under an open staff feed and
// starts it again on the same data and address: the feed says it is
// reconnecting, comes back by itself (start_time = the last event seen,
// so what happened meanwhile is replayed), shows a demand posted as the
// desk comes back, and shows no event twice.
func TestConsoleFeedReconnects(t *testing.T) {
	chromium := chromiumPath(t)
	dataDir, addr := t.TempDir(), freeAddr(t)
	first := startDeskAt(t, dataDir, addr)
	shots := screenshotDir(t)
	browser := startBrowser(t, chromium)

	staff := first.open(t, browser, "staff", shots)
	staff.devSignIn("staff")
	staff.waitTrue("the live feed connects", `document.querySelector('#feed-status')?.dataset.status === 'live'`)
	staff.waitVisible(`[data-testid=feed-row]`)

	first.stop()
	staff.waitTrue("the feed notices the desk is gone", `document.querySelector('#feed-status')?.dataset.status === 'reconnecting'`)
	staff.shot("reconnect-1-desk-down-zh")

	second := startDeskAt(t, dataDir, addr)
	demandID := second.postDemand(t)
	staff.waitTrue("the feed is live again", `document.querySelector('#feed-status')?.dataset.status === 'live'`)
	staff.waitVisible(fmt.Sprintf(`[data-testid=feed-row][data-demand-id=%q]`, demandID))
	if dup := staff.num(`(() => { const ids = Array.from(document.querySelectorAll('[data-testid=feed-row]')).map(r => r.dataset.eventId);
		return ids.length - new Set(ids).size; })()`); dup != 0 {
		t.Errorf("the feed shows %v events twice after reconnecting", dup)
	}
	staff.shot("reconnect-2-back-zh")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// --- the desk --------------------------------------------------------------

type desk struct {
	base string
	key  auth.Issuer
	stop func() // stops the desk (once); the test's cleanup calls it too
}

// startDesk runs the whole desk as the binary does, with demo data, the
// gateway and console on a free loopback port, and no TCP port for NATS.
func startDesk(t *testing.T) *desk {
	t.Helper()
	return startDeskAt(t, t.TempDir(), "127.0.0.1:0")
}

// startDeskAt runs the desk on a data folder and HTTP address of the
// test's choosing (a restart reuses both).
func startDeskAt(t *testing.T, dataDir, httpAddr string) *desk {
	t.Helper()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := app.Defaults()
	cfg.DataDir = dataDir
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = httpAddr
	cfg.Seed = true
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.WritesPerSecond = 1e6
	cfg.WriteBurst = 1e6

	// Registered before the desk's own stop, so it runs after it.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("desk log (warnings and errors):\n%s", logs.String())
		}
	})
	r, stop := apptest.Start(t, cfg, log, 60*time.Second)
	if r.HTTPAddr == "" {
		t.Fatal("the desk serves no HTTP: is --http wired into app.Run?")
	}
	key, _, err := auth.LoadOrCreateDevKey(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return &desk{base: "http://" + r.HTTPAddr, key: auth.Issuer{Key: key}, stop: stop}
}

// postDemand posts a pledge-financing demand through the REST gateway as
// the seeded steel enterprise, and returns its id.
func (d *desk) postDemand(t *testing.T) string {
	t.Helper()
	tok := d.mint(t, auth.Caller{Role: auth.Enterprise, Org: strings.TrimPrefix(enterpriseIdentity, "enterprise:"), Subject: "browser-test-enterprise"})
	body := fmt.Sprintf(`{"demand": {"enterpriseName": "武昌示范钢铁有限公司", "sector": "SECTOR_STEEL", "region": "420106",
		"kind": "DEMAND_KIND_FINANCING", "categories": ["PRODUCT_CATEGORY_CARBON_PLEDGE"], "amountYuan": "15000000",
		"termMonths": 12, "ceaTonnes": "700000", "deadline": %q}}`, time.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339))
	// Right after a start the matching index may still be loading: that
	// answers Unavailable (503), "retry in a few seconds".
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodPost, d.base+"/v1/demands", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST /v1/demands: %v", err)
		}
		var out struct {
			Demand struct {
				ID string `json:"id"`
			} `json:"demand"`
			Message string `json:"message"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // pace the retries the 503 asks for
			continue
		}
		if err != nil || resp.StatusCode != http.StatusOK || out.Demand.ID == "" {
			t.Fatalf("POST /v1/demands: HTTP %d, %v, %s", resp.StatusCode, err, out.Message)
		}
		return out.Demand.ID
	}
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// mint returns a token for c, as 'carbondesk token' would.
func (d *desk) mint(t *testing.T, c auth.Caller) string {
	t.Helper()
	tok, err := d.key.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// --- the browser -----------------------------------------------------------

// chromiumPath finds Chromium, or skips the test (fails it in CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CARBONDESK_CHROMIUM"), "/usr/bin/chromium"}
	if p, err := exec.LookPath("chromium"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c
		}
	}
	msg := "chromium is not installed (looked at $CARBONDESK_CHROMIUM, /usr/bin/chromium and the PATH): " +
		"the console's browser tests need it; install it with 'apt-get install -y chromium' (.ci/run does)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// screenshotDir is where the screenshots go; the log says where.
func screenshotDir(t *testing.T) string {
	t.Helper()
	var dir string
	switch {
	case os.Getenv("CARBONDESK_ARTIFACTS") != "":
		dir = filepath.Join(os.Getenv("CARBONDESK_ARTIFACTS"), "screenshots")
	case os.Getenv("CI") != "":
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "artifacts", "screenshots")
	default:
		dir = t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", dir)
	return dir
}

// repoRoot is the folder holding go.mod, above the test's folder.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// startBrowser starts one headless Chromium for the test; tabs open in
// browser contexts of their own (separate storage, as separate people).
func startBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.WindowSize(1366, 900),
		chromedp.Flag("lang", "zh-CN"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return bctx
}

// tab is one person's browser tab on the console.
type tab struct {
	t     *testing.T
	name  string
	ctx   context.Context
	base  string
	shots string
}

func (d *desk) open(t *testing.T, browser context.Context, name, shots string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, name: name, ctx: ctx, base: d.base, shots: shots}
	// The first run opens the tab and binds its life to the context it is
	// given: give it the tab's own, without a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	tb.do("open the console", chromedp.Navigate(d.base+"/"))
	tb.waitVisible(`#token-input`)
	return tb
}

const stepTimeout = 20 * time.Second

// do runs actions, failing the test (with a screenshot) on error.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.failShot(what)
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

func (b *tab) failShot(what string) {
	name := "FAILED-" + b.name + "-" + regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(what, "-")
	if len(name) > 80 {
		name = name[:80]
	}
	b.shot(name)
}

func (b *tab) waitVisible(sel string) {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// click scrolls the element to the middle of the window (clear of the
// sticky header) and clicks it with the mouse, as a person would.
func (b *tab) click(sel string) {
	b.t.Helper()
	b.do("click "+sel,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: 'center', inline: 'center'})`, sel)),
		chromedp.Click(chromedp.CSS(sel)))
}

// holdAnswer holds the answer to the page's next request whose URL holds
// part until the page calls window.__releaseAnswer(): the test decides when
// it lands (the request itself goes out at once).
func (b *tab) holdAnswer(part string) {
	b.t.Helper()
	b.str(fmt.Sprintf(`(() => {
		const f = window.fetch;
		let release;
		const held = new Promise((r) => { release = r; });
		window.__releaseAnswer = () => { release(); return 'released'; };
		window.fetch = (input, init) => {
			if (!String(input?.url || input).includes(%q)) return f(input, init);
			window.fetch = f;
			return f(input, init).then((resp) => held.then(() => resp));
		};
		return 'held';
	})()`, part))
}

// pressWhile presses the mouse button on sel, runs during while it is held
// down, and lets go where it pressed: a click that a redraw may land in the
// middle of, as a live update can under a person's pointer.
func (b *tab) pressWhile(sel string, during func()) {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	var at struct{ X, Y float64 }
	if err := json.Unmarshal(b.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		el.scrollIntoView({block: 'center', inline: 'center'});
		const r = el.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()`, sel)), &at); err != nil {
		b.t.Fatalf("%s: where is %s: %v", b.name, sel, err)
	}
	b.do("press on "+sel, chromedp.MouseEvent(chromedp.MousePressed, at.X, at.Y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	during()
	b.do("let go on "+sel, chromedp.MouseEvent(chromedp.MouseReleased, at.X, at.Y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
}

// setValue sets an input's or a select's value and tells the page it changed.
func (b *tab) setValue(sel, v string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return el.value; })()`, sel, v)
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	if got := b.str(js); got != v {
		b.t.Fatalf("%s: set %s to %q, it holds %q", b.name, sel, v, got)
	}
}

// waitTrue polls a JavaScript expression until it is truthy.
func (b *tab) waitTrue(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout))); err != nil {
		b.failShot(what)
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

func (b *tab) str(expr string) string {
	b.t.Helper()
	v := b.eval(expr)
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return strings.Trim(string(v), `"`)
	}
	return s
}

func (b *tab) num(expr string) float64 {
	b.t.Helper()
	var f float64
	v := b.eval(expr)
	if err := json.Unmarshal(v, &f); err != nil {
		b.t.Fatalf("%s: %s is %s, not a number", b.name, expr, v)
	}
	return f
}

func (b *tab) eval(expr string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.failShot("eval")
		b.t.Fatalf("%s: evaluate %s: %v", b.name, expr, err)
	}
	return v
}

// shot saves a full-page PNG.
func (b *tab) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	// From the top, so the sticky header sits where it belongs.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		b.t.Logf("%s: scroll up for screenshot %s: %v", b.name, name, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("%s: screenshot %s: %v", b.name, name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

func (b *tab) setLang(lang string) {
	b.t.Helper()
	b.do("choose "+lang, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem('carbondesk.lang', %q)`, lang)), chromedp.Reload())
	b.waitVisible(`#token-input`)
}

// devSignIn picks a demo identity on the sign-in page.
func (b *tab) devSignIn(identity string) {
	b.t.Helper()
	b.click(fmt.Sprintf(`[data-testid=dev-identity][data-identity=%q]`, identity))
	b.waitVisible(`#sign-out`)
}

// tokenSignIn pastes a token on the sign-in page.
func (b *tab) tokenSignIn(token string) {
	b.t.Helper()
	b.setValue(`#token-input`, token)
	b.click(`#token-submit`)
	b.waitVisible(`#sign-out`)
}

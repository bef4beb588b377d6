package testenv

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Scrape reads a Prometheus text page (a /metrics URL), failing the test
// when it cannot.
func Scrape(t testing.TB, url string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// MetricValue is the value of the series named exactly (name{labels...})
// in a Prometheus text scrape, and whether it is there.
func MetricValue(scrape, series string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(scrape)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

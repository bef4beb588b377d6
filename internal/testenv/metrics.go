package testenv

import (
	"regexp"
	"strconv"
)

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

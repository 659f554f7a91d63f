package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// StagePoint is one stage's part of the pipeline's latency at one load, read from the
// child's streamscore_stage_seconds (pipeline.Stage says what each stage covers): the
// observations made while the load ran, their mean, and their p50 and p99 interpolated
// within the histogram's log-linear buckets (4 per power of two, so within 25%).
type StagePoint struct {
	Stage  string  `json:"stage"`
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
}

// stageOrder is the order of pipeline.Stage, for the table.
var stageOrder = []string{"fetch", "decode", "feedback_wait", "queue", "score", "produce", "ack"}

// stageHist is one stage's histogram as scraped: cumulative counts by upper bound.
type stageHist struct {
	le    []float64 // ascending, +Inf last
	cum   []float64
	sum   float64
	count float64
}

// freeAddress returns a loopback address with a port nobody listens on now, for the
// child's /metrics.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scrapeStages reads streamscore_stage_seconds from the /metrics of the child at addr.
func scrapeStages(ctx context.Context, addr string) (hs map[string]*stageHist, err error) {
	err = scrape(ctx, addr, func(r io.Reader) (err error) { hs, err = parseStages(r); return err })
	if err != nil {
		return nil, fmt.Errorf("reading the pipeline's stage times: %w", err)
	}
	return hs, nil
}

// scrapeEntities reads the state's entity gauges from the /metrics of the child at addr.
func scrapeEntities(ctx context.Context, addr string) (window, feedback float64, err error) {
	var g map[string]float64
	err = scrape(ctx, addr, func(r io.Reader) (err error) { g, err = parseGauges(r); return err })
	if err != nil {
		return 0, 0, fmt.Errorf("reading the pipeline's entity gauges: %w", err)
	}
	return g["streamscore_window_state_entities"], g["streamscore_feedback_entities"], nil
}

// scrape gets the /metrics of the child at addr and hands the exposition to parse.
func scrape(ctx context.Context, addr string, parse func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/metrics: %s", resp.Status)
	}
	return parse(resp.Body)
}

// parseGauges reads the samples without labels (`name value`) of a text exposition.
func parseGauges(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || name == "" || name[0] == '#' || strings.ContainsAny(name, "{}") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// parseStages reads the streamscore_stage_seconds lines of a Prometheus text exposition.
func parseStages(r io.Reader) (map[string]*stageHist, error) {
	out := map[string]*stageHist{}
	get := func(stage string) *stageHist {
		if out[stage] == nil {
			out[stage] = &stageHist{}
		}
		return out[stage]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, labels, value, ok := splitSample(line)
		if !ok || !strings.HasPrefix(name, "streamscore_stage_seconds") {
			continue
		}
		stage := labels["stage"]
		switch name {
		case "streamscore_stage_seconds_bucket":
			le, err := strconv.ParseFloat(labels["le"], 64)
			if err != nil {
				return nil, fmt.Errorf("stage times: bucket %q: %w", line, err)
			}
			h := get(stage)
			h.le, h.cum = append(h.le, le), append(h.cum, value)
		case "streamscore_stage_seconds_sum":
			get(stage).sum = value
		case "streamscore_stage_seconds_count":
			get(stage).count = value
		}
	}
	return out, sc.Err()
}

// splitSample splits `name{k="v",...} value` (no escaped quotes: the stage labels have none).
func splitSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", nil, 0, false
	}
	open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || end < open {
		return "", nil, 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
	if err != nil {
		return "", nil, 0, false
	}
	labels = map[string]string{}
	for _, kv := range strings.Split(line[open+1:end], ",") {
		k, val, found := strings.Cut(kv, "=")
		if found {
			labels[k] = strings.Trim(val, `"`)
		}
	}
	return line[:open], labels, v, true
}

// stagesBetween is what each stage observed between two scrapes.
func stagesBetween(before, after map[string]*stageHist) []StagePoint {
	var out []StagePoint
	for _, s := range stageOrder {
		a := after[s]
		if a == nil {
			continue
		}
		d := &stageHist{le: a.le, cum: append([]float64(nil), a.cum...), sum: a.sum, count: a.count}
		if b := before[s]; b != nil && len(b.cum) == len(d.cum) {
			for i := range d.cum {
				d.cum[i] -= b.cum[i]
			}
			d.sum -= b.sum
			d.count -= b.count
		}
		if d.count <= 0 {
			continue
		}
		out = append(out, StagePoint{Stage: s, Count: uint64(d.count), MeanMs: d.sum / d.count * 1e3,
			P50Ms: d.quantile(0.5) * 1e3, P99Ms: d.quantile(0.99) * 1e3})
	}
	return out
}

// quantile interpolates linearly within the bucket holding the q-quantile, as PromQL's
// histogram_quantile does; in the +Inf bucket it answers the largest finite bound.
func (h *stageHist) quantile(q float64) float64 {
	rank := q * h.count
	i := sort.Search(len(h.cum), func(i int) bool { return h.cum[i] >= rank })
	if i >= len(h.cum) {
		i = len(h.cum) - 1
	}
	if i == len(h.le)-1 && i > 0 {
		return h.le[i-1]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = h.le[i-1], h.cum[i-1]
	}
	in := h.cum[i] - below
	if in <= 0 {
		return h.le[i]
	}
	return lo + (h.le[i]-lo)*(rank-below)/in
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// runFile is the part of a gsbench or `mesh bench --json` result that the
// summary reads; both print these fields under the same names.
type runFile struct {
	LatencyMS struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
	Sustained struct {
		DeliveriesPerS float64 `json:"deliveries_per_s"`
	} `json:"sustained"`
	Frames *struct {
		PayloadPerMsg float64 `json:"payload_per_msg"`
	} `json:"frames"`
	Incomplete  int     `json:"incomplete"`
	Late        int     `json:"late"`
	CPUMsPerMsg float64 `json:"cpu_ms_per_msg"`
}

var runName = regexp.MustCompile(`^n(\d+)-s(\d+)-([a-z0-9]+)\.json$`)

// summarize prints, per node count and system, the median and the
// individual values of every run that run.sh left in dir.
func summarize(dir string, w io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("summarize: %w", err)
	}
	type key struct {
		n   int
		sys string
	}
	runs := map[key][]runFile{}
	var failed []string
	for _, e := range entries {
		m := runName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("summarize: %w", err)
		}
		var r runFile
		if err := json.Unmarshal(data, &r); err != nil || r.LatencyMS.P50 == 0 {
			failed = append(failed, e.Name())
			continue
		}
		n, _ := strconv.Atoi(m[1])
		runs[key{n, m[3]}] = append(runs[key{n, m[3]}], r)
	}
	keys := make([]key, 0, len(runs))
	for k := range runs {
		keys = append(keys, k)
	}
	order := map[string]int{"gs": 0, "gs6": 1, "gs12": 2, "gsnosign": 3, "flood": 4, "plumtree": 5, "lazy": 6, "fanout": 7}
	slices.SortFunc(keys, func(a, b key) int {
		if a.n != b.n {
			return a.n - b.n
		}
		return order[a.sys] - order[b.sys]
	})
	fmt.Fprintln(w, "| N | system | runs | p50 ms | p99 ms | deliveries/s | payload frames/msg | CPU ms/msg | incomplete+late |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, k := range keys {
		rs := runs[k]
		col := func(f func(runFile) float64, format string) string {
			var v []float64
			for _, r := range rs {
				v = append(v, f(r))
			}
			parts := make([]string, len(v))
			for i, x := range v {
				parts[i] = fmt.Sprintf(format, x)
			}
			return fmt.Sprintf("**"+format+"** (%s)", median(v), strings.Join(parts, ", "))
		}
		frames := "–"
		if rs[0].Frames != nil && rs[0].Frames.PayloadPerMsg > 0 {
			frames = col(func(r runFile) float64 {
				if r.Frames == nil {
					return 0
				}
				return r.Frames.PayloadPerMsg
			}, "%.1f")
		}
		cpu := "–"
		if rs[0].CPUMsPerMsg > 0 {
			cpu = col(func(r runFile) float64 { return r.CPUMsPerMsg }, "%.2f")
		}
		bad := 0
		for _, r := range rs {
			bad += r.Incomplete + r.Late
		}
		fmt.Fprintf(w, "| %d | %s | %d | %s | %s | %s | %s | %s | %d |\n", k.n, label(k.sys), len(rs),
			col(func(r runFile) float64 { return r.LatencyMS.P50 }, "%.2f"),
			col(func(r runFile) float64 { return r.LatencyMS.P99 }, "%.2f"),
			col(func(r runFile) float64 { return r.Sustained.DeliveriesPerS }, "%.0f"),
			frames, cpu, bad)
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nruns without a result (see their .log): %s\n", strings.Join(failed, ", "))
	}
	return nil
}

func label(sys string) string {
	switch sys {
	case "gs":
		return "gossipsub, same overlay"
	case "gsnosign":
		return "gossipsub, unsigned"
	}
	if p, ok := strings.CutPrefix(sys, "gs"); ok {
		return "gossipsub, --peers " + p
	}
	return "mesh " + sys
}

// median of v, the mean of the middle two for an even count.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

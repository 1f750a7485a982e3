package sim

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Chart is a line chart, written as a self-contained SVG file by hand so
// that the simulator needs nothing beyond the standard library.
type Chart struct {
	Title, Subtitle, XLabel, YLabel string
	// LogX plots x on a log10 scale (x must be positive).
	LogX bool
	// YMax, if positive, fixes the top of the y axis (100 for percent).
	YMax float64
	// XMax, if positive, ends the x axis there and leaves out the points
	// past it: a chart says where to stop looking when one series has a
	// long, flat tail that would squash the rest (see SweepChart).
	XMax   float64
	Series []Series
}

// Series is one line of a chart, or its bars.
type Series struct {
	Name   string
	X, Y   []float64
	Dashed bool
	// Bars draws a bar from 0 to each y, 0.7 x-units wide (for a histogram
	// over integer x), instead of a line.
	Bars bool
	// NoMarkers leaves out the dot at each point: a dense curve (hundreds
	// of points) reads better as a plain line.
	NoMarkers bool
}

// palette holds eight colours that stay apart for colour-blind readers
// too (Okabe and Ito's set, with brown for its yellow, which is unreadable
// on white): any two differ by at least 25 in CIELAB ΔE. Series past the
// eighth reuse them with another dash pattern (seriesStyle), so no two
// series of a chart look alike up to 8 × len(dashes) series.
var palette = []string{
	"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#8c564b",
}

// dashes are the line patterns of each round through the palette.
var dashes = []string{"", "9 3", "2 3", "9 3 2 3"}

// seriesStyle returns series i's colour and dash pattern ("" for solid).
// A series marked Dashed (a theory curve) keeps its own dash.
func seriesStyle(i int, s *Series) (colour, dash string) {
	colour = palette[i%len(palette)]
	dash = dashes[(i/len(palette))%len(dashes)]
	if s.Dashed {
		dash = "6 4"
	}
	return colour, dash
}

// WriteSVG draws the chart.
func (c *Chart) WriteSVG(w io.Writer) error {
	const (
		width, height                     = 820, 480
		left, right, top, bottom, legendW = 64, 20, 48, 56, 215
	)
	plotW := float64(width - left - right - legendW)
	plotH := float64(height - top - bottom)
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range c.Series {
		for i := range s.X {
			x := s.X[i]
			if c.XMax > 0 && x > c.XMax {
				continue
			}
			if c.LogX {
				x = math.Log10(x)
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymax = math.Max(ymax, s.Y[i])
		}
	}
	if math.IsInf(xmin, 1) {
		xmin, xmax = 0, 1
	}
	for _, s := range c.Series {
		if s.Bars && !c.LogX {
			// Room for the outer bars' halves.
			xmin, xmax = xmin-0.5, xmax+0.5
			break
		}
	}
	if c.LogX {
		xmin, xmax = math.Floor(xmin), math.Ceil(xmax)
	}
	if c.XMax > 0 && !c.LogX {
		xmax = c.XMax
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	if c.YMax > 0 {
		ymax = c.YMax
	}
	ystep := niceStep(ymax / 5)
	ymax = math.Ceil(ymax/ystep) * ystep
	if ymax == 0 {
		ymax, ystep = 1, 0.2
	}
	px := func(x float64) float64 {
		if c.LogX {
			x = math.Log10(x)
		}
		return left + (x-xmin)/(xmax-xmin)*plotW
	}
	py := func(y float64) float64 { return top + plotH - y/ymax*plotH }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(truncate(c.Title, 90)))
	fmt.Fprintf(&b, `<text x="%d" y="36" font-size="11" fill="#555">%s</text>`+"\n", left, html.EscapeString(truncate(c.Subtitle, 120)))
	// Grid and y ticks.
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%s" y2="%s" stroke="#ddd"/>`+"\n", left, f(py(y)), f(left+plotW), f(py(y)))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%s</text>`+"\n", left-6, f(py(y)+4), strconv.FormatFloat(y, 'g', 4, 64))
	}
	// x ticks.
	if c.LogX {
		for e := xmin; e <= xmax; e++ {
			x := math.Pow(10, e)
			fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%s" stroke="#ddd"/>`+"\n", f(px(x)), top, f(px(x)), f(top+plotH))
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f(px(x)), f(top+plotH+18), strconv.FormatFloat(x, 'f', -1, 64))
		}
	} else {
		step := niceStep((xmax - xmin) / 10)
		for x := math.Ceil(xmin/step) * step; x <= xmax+step*1e-6; x += step {
			if x == 0 {
				x = 0 // not -0, which would print as "-0"
			}
			fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%s" stroke="#ddd"/>`+"\n", f(px(x)), top, f(px(x)), f(top+plotH))
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f(px(x)), f(top+plotH+18), strconv.FormatFloat(x, 'g', 4, 64))
		}
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%s" height="%s" fill="none" stroke="#333"/>`+"\n", left, top, f(plotW), f(plotH))
	fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", f(left+plotW/2), height-14, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %s) rotate(-90)" text-anchor="middle">%s</text>`+"\n", f(top+plotH/2), html.EscapeString(c.YLabel))
	// Lines, points and legend.
	for i, s := range c.Series {
		col, pattern := seriesStyle(i, &s)
		dash := ""
		if pattern != "" {
			dash = ` stroke-dasharray="` + pattern + `"`
		}
		if c.XMax > 0 {
			k := 0
			for k < len(s.X) && s.X[k] <= c.XMax {
				k++
			}
			s.X, s.Y = s.X[:k], s.Y[:k]
		}
		ly := top + 8 + i*18
		lx := width - right - legendW + 14
		if s.Bars {
			bw := 0.7 * plotW / (xmax - xmin)
			for j := range s.X {
				y0, y1 := py(0), py(s.Y[j])
				fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s" fill-opacity="0.6"/>`+"\n",
					f(px(s.X[j])-bw/2), f(y1), f(bw), f(y0-y1), col)
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="22" height="10" fill="%s" fill-opacity="0.6"/>`+"\n", lx, ly-5, col)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+28, ly+4, html.EscapeString(truncate(s.Name, 30)))
			continue
		}
		var pts []string
		for j := range s.X {
			pts = append(pts, f(px(s.X[j]))+","+f(py(s.Y[j])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", col, dash, strings.Join(pts, " "))
		if !s.Dashed && !s.NoMarkers {
			for _, p := range pts {
				x, y, _ := strings.Cut(p, ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", x, y, col)
			}
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+22, ly, col, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+28, ly+4, html.EscapeString(truncate(s.Name, 30)))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// truncate shortens s to n characters (runes, not bytes), the last an
// ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

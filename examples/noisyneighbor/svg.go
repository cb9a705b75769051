package main

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Geometry of the chart, in SVG user units.
const (
	chartWidth   = 720
	chartHeight  = 410
	plotLeft     = 70
	plotRight    = chartWidth - 20
	plotTop      = 60
	plotBottom   = chartHeight - 90
	tenantColorA = "#d62728" // the flood
	tenantColorB = "#1f77b4" // the steady tenant
)

// series is one line of the chart: a value per time bin.
type series struct {
	label, color string
	values       []float64
}

// chart writes the report's admitted requests per second per tenant over
// time as an SVG document.
func (r *report) chart(w io.Writer) error {
	mode := "with tenancy's throttle"
	if !r.Throttle {
		mode = "without a throttle"
	}
	colors := []string{tenantColorA, tenantColorB}
	var lines []series
	for i, t := range r.Tenants {
		lines = append(lines, series{
			label:  fmt.Sprintf("%s (%s, sends %s/s)", t.Tenant, t.Tier, strconv.FormatFloat(t.Rate, 'f', -1, 64)),
			color:  colors[i%len(colors)],
			values: t.AdmittedPerSecond,
		})
	}
	title := "Admitted requests per second, " + mode
	sub := fmt.Sprintf("%d workers × %v; %d bins of %v", r.Workers, r.Work, chartBins, r.Bin.Round(time.Millisecond))
	return writeChart(w, title, sub, "admitted requests/s", r.Bin, lines)
}

// writeChart draws lines over time, each value the mean of one bin, with
// axes, ticks, the y axis's label and a legend.
func writeChart(w io.Writer, title, subtitle, yLabel string, bin time.Duration, lines []series) error {
	bins := 0
	peak := 0.0
	for _, l := range lines {
		bins = max(bins, len(l.values))
		for _, v := range l.values {
			peak = max(peak, v)
		}
	}
	span := (time.Duration(max(bins, 1)) * bin).Seconds()
	yMax, yStep := niceScale(peak)
	xStep := niceStep(span / 8)
	x := func(sec float64) float64 { return plotLeft + sec/span*(plotRight-plotLeft) }
	y := func(v float64) float64 { return plotBottom - v/yMax*(plotBottom-plotTop) }

	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`,
		chartWidth, chartHeight, chartWidth, chartHeight)
	p(`<title>%s</title>`, esc(title))
	p(`<rect width="%d" height="%d" fill="#fff"/>`, chartWidth, chartHeight)
	p(`<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`, plotLeft, esc(title))
	p(`<text x="%d" y="44" fill="#555">%s</text>`, plotLeft, esc(subtitle))

	// Grid and ticks.
	p(`<g stroke="#ddd">`)
	for v := yStep; v <= yMax+yStep/2; v += yStep {
		p(`<line x1="%d" y1="%s" x2="%d" y2="%s"/>`, plotLeft, num(y(v)), plotRight, num(y(v)))
	}
	p(`</g>`)
	p(`<g text-anchor="end">`)
	for v := 0.0; v <= yMax+yStep/2; v += yStep {
		p(`<text x="%d" y="%s">%s</text>`, plotLeft-6, num(y(v)+4), strconv.FormatFloat(v, 'f', -1, 64))
	}
	p(`</g>`)
	p(`<g text-anchor="middle">`)
	for s := 0.0; s <= span+xStep/1000; s += xStep {
		p(`<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#000"/>`, num(x(s)), plotBottom, num(x(s)), plotBottom+5)
		p(`<text x="%s" y="%d">%s</text>`, num(x(s)), plotBottom+19, strconv.FormatFloat(s, 'f', -1, 64))
	}
	p(`</g>`)

	// Axes and their labels.
	p(`<g stroke="#000">`)
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d"/>`, plotLeft, plotBottom, plotRight, plotBottom)
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d"/>`, plotLeft, plotTop, plotLeft, plotBottom)
	p(`</g>`)
	p(`<text x="%d" y="%d" text-anchor="middle">time (s)</text>`, (plotLeft+plotRight)/2, plotBottom+38)
	p(`<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`,
		(plotTop+plotBottom)/2, (plotTop+plotBottom)/2, esc(yLabel))

	// The lines, a point in the middle of each bin.
	for _, l := range lines {
		var pts strings.Builder
		for i, v := range l.values {
			if i > 0 {
				pts.WriteByte(' ')
			}
			pts.WriteString(num(x((float64(i) + 0.5) * bin.Seconds())))
			pts.WriteByte(',')
			pts.WriteString(num(y(v)))
		}
		p(`<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="%s"/>`, esc(l.color), pts.String())
	}

	// The legend, under the plot, a column per line.
	for i, l := range lines {
		lx, ly := plotLeft+i*300, plotBottom+68
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`, lx, ly-4, lx+24, ly-4, esc(l.color))
		p(`<text x="%d" y="%d">%s</text>`, lx+30, ly, esc(l.label))
	}
	p(`</svg>`)
	return b.Flush()
}

// niceScale returns an axis maximum above peak, with room for a line at
// the peak to be seen, and a step that divides it in at most six: 1, 2 or
// 5 times a power of ten.
func niceScale(peak float64) (top, step float64) {
	if peak <= 0 {
		return 1, 0.2
	}
	peak *= 1.05
	step = niceStep(peak / 6)
	return math.Ceil(peak/step) * step, step
}

// niceStep returns the smallest of 1, 2 and 5 times a power of ten that is
// at least raw.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw*(1-1e-9) {
			return m * pow
		}
	}
	return 10 * pow
}

// num writes a coordinate with at most one decimal.
func num(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

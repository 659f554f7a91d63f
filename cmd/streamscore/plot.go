package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotLatency draws event-to-prediction latency percentiles against offered load, and the
// Kafka floor (the relay's percentiles, dashed) beside them.
func plotLatency(pts, floor []latencyPoint, path string) error {
	p := plot.New()
	p.Title.Text = "streamscore: event-to-prediction latency vs offered load"
	p.X.Label.Text = "offered load (events/s, log scale)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	series := []struct {
		name string
		get  func(latencyPoint) float64
		col  color.RGBA
	}{
		{"p50", func(l latencyPoint) float64 { return l.P50Ms }, color.RGBA{R: 31, G: 119, B: 180, A: 255}},
		{"p99", func(l latencyPoint) float64 { return l.P99Ms }, color.RGBA{R: 255, G: 127, B: 14, A: 255}},
		{"p99.9", func(l latencyPoint) float64 { return l.P999Ms }, color.RGBA{R: 214, G: 39, B: 40, A: 255}},
	}
	for i := range 2 * len(series) {
		s, pts, name := series[i%len(series)], pts, series[i%len(series)].name
		if i >= len(series) {
			pts, name = floor, "Kafka floor "+name
		}
		xy := make(plotter.XYs, 0, len(pts))
		for _, l := range pts {
			if v := s.get(l); v > 0 && l.Offered > 0 {
				xy = append(xy, plotter.XY{X: l.Offered, Y: v})
			}
		}
		if len(xy) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xy)
		if err != nil {
			return fmt.Errorf("plotting %s: %w", name, err)
		}
		line.Color, points.Color = s.col, s.col
		if i >= len(series) {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			points.Shape = draw.CircleGlyph{}
		}
		p.Add(line, points)
		p.Legend.Add(name, line, points)
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}

package bench

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// latencySeries is one set of latency points to plot.
type latencySeries struct {
	name   string
	pts    []LatencyPoint
	dashes []vg.Length
	glyph  draw.GlyphDrawer
}

// PlotLatency draws event-to-prediction latency percentiles against offered load: the
// pipeline's (labels topic idle), the pipeline's with labels flowing, and the Kafka floor
// (the relay's).
func PlotLatency(r *Results, path string) error {
	p := plot.New()
	p.Title.Text = "streamscore: event-to-prediction latency vs offered load"
	p.X.Label.Text = "offered load (events/s, log scale)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	groups := []latencySeries{
		{"labels idle ", r.Latency, nil, draw.CircleGlyph{}},
		{"labels flowing ", r.LatencyLabels, []vg.Length{vg.Points(1), vg.Points(2)}, draw.TriangleGlyph{}},
		{"Kafka floor ", r.KafkaLatency, []vg.Length{vg.Points(5), vg.Points(3)}, draw.SquareGlyph{}},
	}
	percentiles := []struct {
		name string
		get  func(LatencyPoint) float64
		col  color.RGBA
	}{
		{"p50", func(l LatencyPoint) float64 { return l.P50Ms }, color.RGBA{R: 31, G: 119, B: 180, A: 255}},
		{"p99", func(l LatencyPoint) float64 { return l.P99Ms }, color.RGBA{R: 255, G: 127, B: 14, A: 255}},
		{"p99.9", func(l LatencyPoint) float64 { return l.P999Ms }, color.RGBA{R: 214, G: 39, B: 40, A: 255}},
	}
	for _, g := range groups {
		for _, pc := range percentiles {
			xy := make(plotter.XYs, 0, len(g.pts))
			for _, l := range g.pts {
				if v := pc.get(l); v > 0 && l.Offered > 0 {
					xy = append(xy, plotter.XY{X: l.Offered, Y: v})
				}
			}
			if len(xy) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(xy)
			if err != nil {
				return fmt.Errorf("plotting %s%s: %w", g.name, pc.name, err)
			}
			line.Color, points.Color = pc.col, pc.col
			line.Dashes, points.Shape = g.dashes, g.glyph
			p.Add(line, points)
			p.Legend.Add(g.name+pc.name, line, points)
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p.Save(8*vg.Inch, 5.5*vg.Inch, path)
}

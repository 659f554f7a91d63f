// Package bench is the harness behind streamscore-bench: it measures, on a real broker, the
// Kafka ceiling (a) and the scoring ceiling (b) that bound streamscore, the catch-up rate (c)
// and the event-to-prediction latency under offered load (d) of a `streamscore run` child
// process, and the backfill rate (e) of a `streamscore backfill` child, and reports them as
// a table, results.json and latency.png. Stage c also splits the child's CPU per event into
// ONNX Runtime and the rest from CPU profiles (cpuprofile.go); stage d repeats each load
// against the Kafka floor and reports median differences (repeats.go); stage s, on request,
// catches up at several partition counts and sizes (scale.go). Main is the whole command.
//
// It lives outside cmd/streamscore so that the production binary links neither the plotting
// library nor the harness, and it drives the production binary the way an operator would:
// as a child process with a config file, never through its package main.
package bench

// Command streamscore-bench measures streamscore on a real broker: see internal/bench.Main.
package main

import "github.com/streamscore/streamscore/internal/bench"

func main() { bench.Command() }

package pipeline

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the operator's Run
// owns every goroutine it starts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Package scorer owns ONNX Runtime: finding and loading the shared library, sessions and
// their execution providers, model metadata, and the micro-batcher that feeds them. It is
// the only package that imports onnxruntime_go.
package scorer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv names the environment variable that points at libonnxruntime.so.
const LibraryEnv = "ONNXRUNTIME_LIB"

// ErrLibraryNotFound is returned when no ONNX Runtime shared library can be located.
var ErrLibraryNotFound = errors.New("ONNX Runtime shared library not found")

// CacheDir is where scripts/install-onnxruntime.sh puts the library, and where the other
// cached tools (Kafka, the Python venv) live: $STREAMSCORE_CACHE or ~/.cache/streamscore.
func CacheDir() string {
	if d := os.Getenv("STREAMSCORE_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "streamscore")
	}
	return filepath.Join(os.TempDir(), "streamscore-cache")
}

// LibraryPath returns the ONNX Runtime shared library to load: $ONNXRUNTIME_LIB when set,
// otherwise the copy installed into the cache by scripts/install-onnxruntime.sh.
func LibraryPath() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %w", ErrLibraryNotFound, LibraryEnv, p, err)
		}
		return p, nil
	}
	p := filepath.Join(CacheDir(), "onnxruntime", "libonnxruntime.so")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: looked for $%s and %s; install it with scripts/install-onnxruntime.sh "+
			"(or `make onnxruntime`), or point %s at a libonnxruntime.so of version 1.29 or newer",
			ErrLibraryNotFound, LibraryEnv, p, LibraryEnv)
	}
	return p, nil
}

// The ONNX Runtime environment is process-wide in onnxruntime_go; it is created once on
// first use and lives until the process exits (destroying it while sessions exist in other
// goroutines would be unsafe, and re-creating it is not supported by the library).
var (
	envOnce sync.Once
	envErr  error
)

func initRuntime() error {
	envOnce.Do(func() {
		path, err := LibraryPath()
		if err != nil {
			envErr = err
			return
		}
		ort.SetSharedLibraryPath(path)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			envErr = fmt.Errorf("initializing ONNX Runtime from %s (version 1.29 or newer is required): %w", path, err)
		}
	})
	return envErr
}

// RuntimeVersion reports the version string of the loaded ONNX Runtime library.
func RuntimeVersion() (string, error) {
	if err := initRuntime(); err != nil {
		return "", err
	}
	return ort.GetVersion(), nil
}

package config

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger builds the logger of log.level and log.format, writing to stderr.
func (l LogConfig) NewLogger() (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(l.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level %q: want debug, info, warn or error", l.Level)
	}
	zc := zap.NewProductionConfig()
	switch l.Format {
	case "", "json":
	case "console":
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("log.format %q: want json or console", l.Format)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.OutputPaths = []string{"stderr"}
	return zc.Build()
}

// Prepare validates c for what a command needs and builds its logger.
func (c *Config) Prepare(need Needs) (*Compiled, *zap.Logger, error) {
	cc, err := c.Validate(need)
	if err != nil {
		return nil, nil, err
	}
	log, err := c.Log.NewLogger()
	if err != nil {
		return nil, nil, err
	}
	return cc, log, nil
}

package drivers

import (
	"context"
	"errors"
	"fmt"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/httpapi"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// api is the HTTP scoring API of a live job (http.address): the server, the one reader
// of the predictions topic that answers events, and the producer that writes them.
type api struct {
	srv   *httpapi.Server
	preds *httpapi.Predictions
	tail  *topics.Tail
	prod  *topics.Producer
}

// newAPI builds the API of op when http.address is set (nil otherwise). ready says
// whether the job can score now (its group source in its group, its operator scoring);
// op and ready follow the operator that runs now, across restarts.
func newAPI(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, op httpapi.Scorer, ready func() bool, d LiveDeps) (*api, error) {
	o, ok := c.HTTPOptions()
	if !ok {
		return nil, nil
	}
	a := &api{}
	var err error
	// The tail starts at the predictions topic's end offsets now, before any event of the
	// API can be produced, so it sees every prediction it may be asked for.
	err = topics.WithinFailover(ctx, kc, "http api: reading the end of "+c.Topics.Predictions, func(ctx context.Context) (err error) {
		a.tail, err = topics.NewTail(ctx, kc, c.Topics.Predictions)
		return err
	})
	if err != nil {
		return nil, err
	}
	if a.prod, err = topics.NewProducer(kc, c.ProducerOptions()); err != nil {
		a.close()
		return nil, fmt.Errorf("http api: %w", err)
	}
	a.preds = httpapi.NewPredictions(a.tail)
	a.srv, err = httpapi.New(o, httpapi.Deps{
		Scorer: op, InputName: c.Model.Input, OutputName: c.Model.Output,
		Ready: ready,
		Events: &httpapi.Events{
			Check: pipeline.NewEventCheck(c.Schema, c.Features), Topic: c.Topics.Input[0],
			Producer: a.prod, Predictions: a.preds,
		},
		Registry: d.Registry, Logger: d.Logger,
	})
	if err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// run serves the API while runOp runs the operator, and orders the shutdown: when ctx
// ends the API drains its in-flight requests first (events among them wait for their
// predictions, so the operator keeps scoring), then the operator drains; when the
// operator stops on its own (a failure), the API stops too.
func (a *api) run(ctx context.Context, runOp func(context.Context) error) error {
	opCtx, stopOp := context.WithCancel(context.Background())
	defer stopOp()
	httpCtx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	predCtx, stopPreds := context.WithCancel(context.Background())
	defer stopPreds()

	srvDone := make(chan error, 1)
	go func() {
		err := a.srv.Run(httpCtx)
		stopOp()
		srvDone <- err
	}()
	predsDone := make(chan error, 1)
	go func() { predsDone <- a.preds.Run(predCtx) }()

	opErr := runOp(opCtx)
	stopHTTP()
	srvErr := <-srvDone
	stopPreds()
	predErr := <-predsDone
	if opErr != nil {
		return opErr
	}
	if srvErr != nil {
		return srvErr
	}
	if predErr != nil && !errors.Is(predErr, context.Canceled) {
		return fmt.Errorf("reading predictions for the event API: %w", predErr)
	}
	return nil
}

func (a *api) close() {
	if a.tail != nil {
		a.tail.Close()
	}
	if a.prod != nil {
		a.prod.Close()
	}
}

// Package lifecycle is the model lifecycle: everything between a trained ONNX file and
// the version that scores an event, live or in a replay. It owns pushing a validated
// model into the registry with its golden rows and manifest (drift reference), the
// activation log (activate, shadow, rollback, list) and the state every instance and
// command derive from it, an instance following that log, and the choice of versions
// for a replay. It does not own storage (topics.Registry, which writes the records and
// alone imports franz-go), loading and validation (scorer, which alone imports
// onnxruntime_go), or the operator, which sees it only through pipeline.Models.
//
// How a push → activate → swap → replay flows across it:
//
//   - Push: PushBundle (golden rows beside the file, read as GoldenRows does; the
//     manifest, ManifestWithReference) calls PushFile, then Push, which opens the file
//     with scorer.OpenBytes, refuses it unless scorer.Validate passes, and stores it
//     with topics.Registry.PutModel.
//   - Activate: Activate resolves a version prefix among the stored versions, Rollback
//     finds the previous live one in State's view of the log, and both append an
//     activation with topics.Registry.Append.
//   - Swap: a live job opens a Follower (NewFollower: NewLive, then Live.CatchUp reads
//     the log to its end) and wires it into the operator (Follower.Wire). Follower.Run,
//     run by the job's Run, follows topics.Registry.Follow; Live.apply loads a newly
//     activated version (Load) and Live.set makes it the one the operator's next
//     Live.Choose returns, so a batch never mixes versions. The operator writes a
//     switch marker (MarkEncoder) whenever the version of a partition changes.
//   - Replay: a backfill calls Replay, which reads the markers (topics.Registry.Marks)
//     into a History whose Choose scores each event with the version that was live for
//     it, or loads one version for a what-if (--model NAME@VERSION). Manifests' drift
//     references reach drift monitoring through WithManifestReferences.
//   - Route: StartExperiment, StopExperiment and Serve check a routing against the
//     registry and the schema and only then append it as an activation (roles
//     experiment, experiment-stop, serve); State folds it into ModelState.Rules and
//     .Experiment. Live.reroute builds it (routeBuild.build: InTreatment's key hash,
//     rules on event fields, pipeline.Ensemble and pipeline.Cascade) into the
//     pipeline.Route that Live.Choose hands the operator with the batch; the switch
//     marker then carries the routing as JSON, and History rebuilds the same Route from
//     it, so a replay routes each event as live scoring did.
package lifecycle

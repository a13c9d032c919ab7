/**
 * dconnect as a library (`import { ... } from 'dconnect'`): what a researcher scripts, the same calls
 * the CLI makes. Load a topology (a preset's name or a YAML file), change parameters as `--set` does,
 * run a copy or concurrent moves (on this thread, or on a worker with progress and an AbortSignal), a
 * move through a NIC (`runNicMove`: a drive to a client on its network, back, or client to client),
 * regenerate the paper's figures or sweep parameters; results are typed objects, and every user-facing
 * failure is a `DconnectError` with a stable `code` and a `hint`. docs/library.md shows a script.
 */
export { DconnectError, type ErrorCode } from './core/errors.js';
export { loadTopology, parseTopology, presetNames } from './topology/load.js';
export { applySettings, parameterPaths, type Setting } from './topology/params.js';
export type { Topology } from './topology/schema.js';
export { runCopy, type CopyRequest, type CopyResult } from './runtime/copy.js';
export { runMoves, DEFAULT_BURST_BYTES, BURST_RELATIVE_ERROR_BOUND, type MovesRequest, type MovesResult, type MoveResult, type MovePair, type Via, type MoveVia, MOVE_VIAS, type Granularity } from './runtime/moves.js';
export { runNicMove, type NicMoveRequest, type NicMoveResult } from './runtime/nic-moves.js';
export { runMovesInBackground, streamMovesInBackground, type BackgroundMovesRequest, type BackgroundOptions, type MovesProgress } from './experiments/background.js';
export { reproduce, type ReproOptions, type ReproResult } from './experiments/repro.js';
export { sweep, type SweepOptions, type SweepResult } from './experiments/sweep.js';
export type { FidelityMode } from './runtime/moves.js';

// The types the calls above take and return (the public surface `etc/dconnect.api.md` records;
// the model's own classes that advanced hooks such as `MovesRequest.connect` pass are not part of it).
export type { Override } from './topology/params.js';
export type { DriveImage, DriveSave } from './runtime/drive-images.js';
export type { Fidelity } from './runtime/fast/fast-forward.js';
export type { GranularityInfo } from './runtime/moves.js';
export type { LinkPayload } from './runtime/counters.js';
export type { BoundCheck } from './experiments/paper.js';
export type { FidelitySummary } from './experiments/fidelity.js';
export type { Figure } from './experiments/repro.js';
export type { Metric } from './experiments/metrics.js';
export type { SweepParam } from './experiments/sweep-params.js';
export type { SweepRow } from './experiments/sweep.js';
export type { CounterSet } from './core/trace.js';
export type { FaultCounts, FaultReport } from './runtime/faults.js';
export type { NicMoveKind } from './host/dc/nic-operator.js';
export type { SwitchForwarding } from './ethernet/switch.js';
export { FIGURES } from './experiments/repro.js';
export { METRICS } from './experiments/metrics.js';
export type { Fig5Bar, Fig6Point } from './experiments/repro.js';
export type { Fig7Point } from './experiments/fig7.js';
export type { Ceiling, Fig7Prediction } from './experiments/fig7-predict.js';
export type { Binding, Limit, Utilization } from './experiments/bottleneck.js';
export type { Fig8Bar, Fig8Result } from './experiments/fig8.js';
export type { FilesPoint, FilesResult } from './experiments/files.js';
export type { RelayPlace, RelayPlaceVia, RelaysBar, RelaysResult } from './experiments/relays.js';

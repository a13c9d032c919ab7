/**
 * dconnect as a library (`import { ... } from 'dconnect'`): what a researcher scripts, the same calls
 * the CLI makes. Load a topology (a preset's name or a YAML file), change parameters as `--set` does,
 * run a copy or concurrent moves (on this thread, or on a worker with progress and an AbortSignal),
 * regenerate the paper's figures or sweep parameters; results are typed objects, and every user-facing
 * failure is a `DconnectError` with a stable `code` and a `hint`. docs/library.md shows a script.
 */
export { DconnectError, type ErrorCode } from './core/errors.js';
export { loadTopology, parseTopology, presetNames } from './topology/load.js';
export { applySettings, parameterPaths, type Setting } from './topology/params.js';
export type { Topology } from './topology/schema.js';
export { runCopy, type CopyRequest, type CopyResult } from './runtime/copy.js';
export { runMoves, DEFAULT_BURST_BYTES, BURST_RELATIVE_ERROR_BOUND, type MovesRequest, type MovesResult, type MoveResult, type MovePair, type Via, type MoveVia, MOVE_VIAS, type Granularity } from './runtime/moves.js';
export { runMovesInBackground, type BackgroundMovesRequest, type BackgroundOptions } from './experiments/background.js';
export { reproduce, type ReproOptions, type ReproResult } from './experiments/repro.js';
export { sweep, type SweepOptions, type SweepResult } from './experiments/sweep.js';
export type { FidelityMode } from './runtime/moves.js';
export type { RelayPlace, RelayPlaceVia, RelaysBar, RelaysResult } from './experiments/relays.js';

import type { Fidelity, FidelityMode } from '../runtime/copy.js';
import type { GranularityInfo } from '../runtime/moves.js';

/**
 * Where the burst bound is checked: the equivalence matrix (test/integration/burst-equivalence.test.ts),
 * not every topology; docs/architecture.md "Two granularities" names one where it does not hold.
 */
const CHECKED = 'on the checked matrix';

/** Which granularity produced a result, in one line: per-TLP (the reference), or the burst size and the stated bound. */
export function granularityLine(g: GranularityInfo): string {
  if (g.mode === 'tlp') return 'granularity: per-TLP (the reference)';
  return `granularity: burst (bursts of up to ${g.burstBytes} B; simulated time within ${((g.relativeErrorBound ?? 0) * 100).toFixed(0)}% of per-TLP's ${CHECKED})`;
}

/** How several moves were obtained, taken together: a bar averaged over seeds, a sweep, a whole run. */
export interface FidelitySummary {
  /** 'mixed' only if the moves were not all run in one mode. */
  mode: FidelityMode | 'mixed';
  moves: number;
  exactMoves: number;
  /**
   * The largest 99.7% relative error of any move (0 when all are exact). A mean over moves is within
   * it too, since each term is.
   */
  maxRelativeError99: number;
  detailedChunks: number;
  totalChunks: number;
}

export function summarizeFidelity(fs: readonly Fidelity[]): FidelitySummary {
  const modes = new Set(fs.map((f) => f.mode));
  return {
    mode: modes.size === 1 ? fs[0].mode : 'mixed',
    moves: fs.length,
    exactMoves: fs.filter((f) => f.exact).length,
    maxRelativeError99: Math.max(0, ...fs.filter((f) => !f.exact).map((f) => f.relativeError99)),
    detailedChunks: fs.reduce((n, f) => n + f.detailedChunks, 0),
    totalChunks: fs.reduce((n, f) => n + f.totalChunks, 0),
  };
}

/** `relativeError99` is a fraction: 0.0012 -> "±0.12%". */
export const fmtError = (x: number) => `±${(100 * x).toFixed(2)}%`;

/**
 * A few words for a table cell or a progress line: "full, every TLP", "full, every burst, ±3.00%
 * stated" (burst granularity), "fast, exact", "fast, ±0.12%" (one move), "fast, statistical, max
 * ±0.20%" (several).
 */
export function fidelityTag(s: FidelitySummary): string {
  if (s.mode === 'full' && s.exactMoves === s.moves) return 'full, every TLP';
  if (s.mode === 'full') return `full, every burst, ${fmtError(s.maxRelativeError99)} stated`;
  if (s.exactMoves === s.moves) return `${s.mode}, exact`;
  if (s.moves === 1) return `${s.mode}, ${fmtError(s.maxRelativeError99)}`;
  if (s.exactMoves > 0) return `${s.mode}, ${s.exactMoves} of ${s.moves} exact, others max ${fmtError(s.maxRelativeError99)}`;
  return `${s.mode}, statistical, max ${fmtError(s.maxRelativeError99)}`;
}

export const tagOf = (f: Fidelity) => fidelityTag(summarizeFidelity([f]));

/** "180 of 8192 chunks in detail": the share of the move whose every TLP was simulated. */
export function chunksText(s: FidelitySummary): string {
  return `${s.detailedChunks} of ${s.totalChunks} chunks in detail`;
}

/**
 * One line for a chart subtitle or a table heading, e.g. "fidelity: fast (10 of 48 moves exact,
 * others within ±0.30% at 99.7%)", "fidelity: full (every TLP)" or, at burst granularity,
 * "fidelity: full (every burst; within ±3.00% of per-TLP's on the checked matrix)".
 */
export function fidelityLine(s: FidelitySummary): string {
  const moves = (n: number) => `${n} move${n === 1 ? '' : 's'}`;
  if (s.mode === 'full' && s.exactMoves === s.moves) return 'fidelity: full (every TLP)';
  // Full fidelity is inexact only at burst granularity, whose bound is stated (checked against per-TLP), not a 99.7% interval.
  if (s.mode === 'full') return `fidelity: full (every burst; within ${fmtError(s.maxRelativeError99)} of per-TLP's ${CHECKED})`;
  const within = `within ${fmtError(s.maxRelativeError99)} at 99.7%`;
  let how: string;
  if (s.exactMoves === s.moves) how = s.moves === 1 ? 'exact' : `all ${moves(s.moves)} exact`;
  else if (s.exactMoves === 0) how = s.moves === 1 ? within : `statistical, every move ${within}`;
  else how = `${s.exactMoves} of ${moves(s.moves)} exact, others ${within}`;
  return `fidelity: ${s.mode} (${how})`;
}

import { createHash } from 'node:crypto';
import type { CounterSet } from '../../core/trace.js';
import { batchMeans, mser5, tQuantile } from './steady-state.js';

/** How a result was obtained (every copy result carries one). */
export interface Fidelity {
  mode: 'fast' | 'full';
  /** True when every number equals the per-TLP simulation's (full mode, or an exact periodic jump, or no jump at all). */
  exact: boolean;
  /** 0 when exact; else the 99.7% interval's half-width on the bandwidth, relative. */
  relativeError99: number;
  /** Chunks simulated TLP by TLP (the rest were jumped). */
  detailedChunks: number;
  totalChunks: number;
  /** One line: what was done. */
  method: string;
}

export interface FastForwardOptions {
  startPs: number;
  chunks: number;
  /** Chunks of the full chunk size (the last may be shorter). */
  fullChunks: number;
  /**
   * Asked at each chunk boundary: true while nothing random has been drawn (the fabric's RNG streams,
   * `RngFactory.drew`): only then can the state repeat exactly.
   */
  deterministic: () => boolean;
  /** The fabric's canonical state (null: no exact search). */
  digest: (() => string) | null;
  /** Every trace counter now. */
  counters: () => Record<string, CounterSet>;
  /** Target 99.7% relative half-width before a statistical jump (the result's own interval is reported). */
  targetRelative?: number;
  /** Boundaries to look for an exact period before falling back to statistics (deterministic moves; default 256: periods up to 128 chunks, seen twice). */
  exactSearchChunks?: number;
  /** Chunks that always stay after a jump, run in detail (default 1: the last, which may be short). */
  tailChunks?: number;
}

export interface FastOutcome {
  /** Simulated end, ps, with the jumped time added. */
  endPs: number;
  /** What to add to each counter for the jumped chunks. */
  counterAdds: Record<string, CounterSet>;
  /** Completion time of every chunk, ps (jumped chunks by the period or the mean). */
  chunkDonePs: number[];
  fidelity: Fidelity;
}

/** Confidence of every interval dconnect reports: 99.7% (z = 3 for a normal). */
export const CONFIDENCE = 0.997;
/**
 * Batches of the interval: 10, the low end of the 10-30 that batch-means practice recommends (fewer
 * batches widen the Student-t quantile, which the interval pays for; more cost detailed chunks).
 * Replicated over 120 moves by bench/coverage.ts: every interval covered the full run.
 */
export const BATCHES = 10;
/** Chunks per batch at least: short batches underestimate the variance of correlated chunk times. */
export const MIN_BATCH_CHUNKS = 5;

/**
 * The fast path's decisions at chunk boundaries (the operator's MoveObserver): it watches chunk
 * completions and, when it can, skips chunks by relabelling (the operator reads on from a later
 * chunk; the skipped chunks' bytes are moved functionally; reported times add the skipped time).
 *
 * Exact: at each boundary the fabric's digest is hashed; when the same state recurs twice at equal
 * spacing (boundaries p1, p2, b with b - p2 = p2 - p1 = c chunks, and equal time steps D), the state
 * at b repeats the state at p2 shifted by D with chunk labels shifted by c, so every later boundary
 * does too while chunks remain: j whole periods are skipped (time + j D, counters + j x the period's
 * deltas) and the rest, the last chunks and the drain, run in detail. Zero error.
 *
 * Statistical (when random latencies make every state unique): chunk intervals after MSER-5
 * truncation are batched; once the 99.7% half-width of the projected end time is below the target,
 * the remaining whole chunks are skipped at the mean interval and the tail runs in detail.
 */
export class FastForward {
  private readonly done: number[];
  private readonly boundaryPs: number[] = [];
  private readonly nextReads: number[] = [];
  private readonly snaps: Record<string, CounterSet>[] = [];
  private readonly intervals: number[] = [];
  private readonly seen = new Map<string, number[]>();
  private offsetPs = 0;
  private jumped = false;
  private skipFrom = 0;
  private skipCount = 0;
  private period = 0;
  private periodPs = 0;
  private counterAdds: Record<string, CounterSet> = {};
  private halfWidthPs = 0;
  private method = '';
  private readonly target: number;
  private readonly exactSearch: number;

  constructor(private readonly o: FastForwardOptions) {
    this.done = new Array<number>(o.chunks).fill(NaN);
    this.target = o.targetRelative ?? 0.003;
    this.exactSearch = o.exactSearchChunks ?? 256;
  }

  /** MoveObserver.chunkWritten: records the boundary, may answer a number of chunks to skip. */
  chunkWritten(chunk: number, nextRead: number, nowPs: number): number {
    // Chunks read before the jump complete at their simulated time; those read after it stand for chunks one jump later.
    this.done[chunk] = this.jumped && chunk >= this.skipFrom + this.skipCount ? nowPs + this.offsetPs : nowPs;
    if (this.jumped) return 0;
    const b = this.boundaryPs.length;
    const prev = b === 0 ? this.o.startPs : this.boundaryPs[b - 1];
    this.boundaryPs.push(nowPs);
    this.nextReads.push(nextRead);
    this.intervals.push(nowPs - prev);
    this.snaps.push(this.o.counters());
    const maxSkip = Math.min(this.o.chunks - (this.o.tailChunks ?? 1), this.o.fullChunks) - nextRead;
    if (maxSkip < 1) return 0;
    if (this.o.deterministic() && this.o.digest && b < this.exactSearch) return this.tryExact(b, nextRead, nowPs, maxSkip);
    return this.tryStatistical(b, nextRead, nowPs, maxSkip);
  }

  private tryExact(b: number, nextRead: number, nowPs: number, maxSkip: number): number {
    const key = createHash('sha256').update(this.o.digest!()).digest('base64');
    const hits = this.seen.get(key) ?? [];
    hits.push(b);
    this.seen.set(key, hits);
    for (let i = hits.length - 2; i >= 1; i--) {
      const p2 = hits[i];
      const c = b - p2;
      if (!hits.includes(p2 - c)) continue;
      const p1 = p2 - c;
      const bp = this.boundaryPs;
      const D = bp[b] - bp[p2];
      if (bp[p2] - bp[p1] !== D || this.nextReads[b] - this.nextReads[p2] !== c || this.nextReads[p2] - this.nextReads[p1] !== c) continue;
      const j = Math.floor(maxSkip / c);
      if (j < 1) return 0;
      this.period = c;
      this.periodPs = D;
      this.counterAdds = scaleDelta(this.snaps[p2], this.snaps[b], j);
      this.method = `exact: the fabric's state repeats every ${c} chunk${c === 1 ? '' : 's'} (${(D / 1e6).toFixed(3)} us); ${j * c} chunks jumped`;
      return this.jump(nextRead, j * c, j * D);
    }
    return 0;
  }

  private tryStatistical(b: number, nextRead: number, nowPs: number, maxSkip: number): number {
    const n = b + 1;
    if (n < MIN_BATCH_CHUNKS * BATCHES) return 0;
    const trunc = mser5(this.intervals);
    if (n - trunc < MIN_BATCH_CHUNKS * BATCHES) return 0;
    const bm = batchMeans(this.intervals, trunc, BATCHES);
    if (!bm) return 0;
    const m = maxSkip;
    const tailN = this.o.chunks - n - m;
    const t = tQuantile(CONFIDENCE, bm.batches - 1);
    const sd = Math.sqrt(m * m * bm.stdError ** 2 + (m + 2 * tailN) * bm.varPerObservation);
    // Phase: the jump lands at an unknown point of any cycle the intervals follow, and the detailed
    // tail replays the phase it started from: each costs at most the running-deviation range. With
    // nothing random the batch variance is no model of the error at all (the intervals are a
    // deterministic cycle), and the mean itself is off by at most that range over the window used,
    // which the m jumped chunks multiply.
    const phase = bm.phaseRange * (2 + (this.o.deterministic() ? m / bm.used : 0));
    const hw = t * sd + m * bm.drift + phase;
    const projected = nowPs - this.o.startPs + (this.o.chunks - n) * bm.mean;
    if (hw / projected > this.target) return 0;
    const first = this.intervals.length - bm.used;
    this.counterAdds = scaleDelta(this.snaps[first - 1] ?? this.snaps[0], this.snaps[b], m / (b - Math.max(0, first - 1)), true);
    this.halfWidthPs = hw;
    this.method = `statistical: MSER-5 truncated ${trunc} chunks, ${bm.batches} batch means of ${bm.used / bm.batches} chunks; ${m} chunks jumped at the mean interval`;
    return this.jump(nextRead, m, Math.round(m * bm.mean));
  }

  private jump(nextRead: number, chunks: number, ps: number): number {
    this.jumped = true;
    this.skipFrom = nextRead;
    this.skipCount = chunks;
    this.offsetPs = ps;
    return chunks;
  }

  /** The chunks the operator skipped: [from, from + count). */
  skipped(): { from: number; count: number } {
    return { from: this.skipFrom, count: this.skipCount };
  }

  finish(endRawPs: number): FastOutcome {
    const endPs = endRawPs + this.offsetPs;
    const total = this.o.chunks;
    const detailed = total - this.skipCount;
    // Jumped chunks complete one period (or one mean interval) after the chunk one period earlier.
    const step = this.period > 0 ? this.period : 1;
    const stepPs = this.period > 0 ? this.periodPs : this.skipCount > 0 ? this.offsetPs / this.skipCount : 0;
    for (let k = this.skipFrom; k < this.skipFrom + this.skipCount; k++) this.done[k] = Math.round(this.done[k - step] + stepPs);
    const exact = this.halfWidthPs === 0;
    const elapsed = endPs - this.o.startPs;
    const rel = exact ? 0 : this.halfWidthPs / Math.max(1, elapsed - this.halfWidthPs);
    const method = this.skipCount === 0 ? 'exact: no steady state found to jump; every TLP simulated' : this.method;
    return {
      endPs,
      counterAdds: this.counterAdds,
      chunkDonePs: this.done,
      fidelity: { mode: 'fast', exact, relativeError99: rel, detailedChunks: detailed, totalChunks: total, method },
    };
  }
}

/** (after - before) x k per counter; maxima are not additive and stay as simulated. */
export function scaleDelta(before: Record<string, CounterSet>, after: Record<string, CounterSet>, k: number, round = false): Record<string, CounterSet> {
  const out: Record<string, CounterSet> = {};
  for (const [name, set] of Object.entries(after)) {
    out[name] = {};
    for (const [key, v] of Object.entries(set)) {
      if (key.startsWith('max')) continue;
      const dv = (v - (before[name]?.[key] ?? 0)) * k;
      out[name][key] = round ? Math.round(dv) : dv;
    }
  }
  return out;
}

import type { CounterSet } from '../../core/trace.js';
import { CONFIDENCE, type Fidelity } from './fast-forward.js';
import { batchMeans, mser5, tQuantile } from './steady-state.js';

/**
 * The fast path for several concurrent moves (`dconnect copy sda sdb sdc sdd`): one jump of a common
 * simulated time D for all of them at once.
 *
 * Moves that share a bottleneck take turns on it, so one move's chunk intervals are noisy while the
 * merged series (the intervals between consecutive chunk completions of any move) is as steady as the
 * bottleneck. So the merged series is analysed as a single move's is (MSER-5, batch means,
 * Student-t 99.7%; see FastForward), and when the moves progress at equal rates (their lead over
 * each other did not grow over the window the estimate uses) every move skips the same k chunks at
 * one instant, D = k x moves x the merged mean interval: the fabric's joint state carries on past the
 * jump with each move's lead as it was. Each move's interval adds to FastForward's terms the change
 * of the lead over the window, at the moves' common rate. Moves whose rates differ (lopsided paths)
 * are not jumped: they run in detail, correct but slower. There is no exact search: the joint state
 * of several moves repeats far more rarely than one move's.
 */

export interface JointMove {
  chunks: number;
  /** Chunks of the full chunk size (the last may be shorter). */
  fullChunks: number;
}

export interface JointOptions {
  startPs: number;
  moves: JointMove[];
  counters: () => Record<string, CounterSet>;
  /** Target 99.7% relative half-width of every move's time before the jump (default JOINT_TARGET). */
  targetRelative?: number;
}

export interface JointOutcome {
  /** Simulated end of each move, ps, with the jumped time added. */
  endPs: number[];
  counterAdds: Record<string, CounterSet>;
  /** Chunks each move skipped. */
  skipped: number[];
  /** One per move. */
  fidelity: Fidelity[];
}

/**
 * 1%, not a single move's 0.3%: moves sharing a bottleneck make the aggregate rate swing slowly and
 * deterministically (paper-2012, 4 direct pairs at x1: 689-710 MB/s over windows of 200 completions,
 * the same with the flash jitter off), so pinning the mean to 0.3% would take most of the move in
 * detail. The interval each result carries says what was reached.
 */
export const JOINT_TARGET = 0.01;
const BATCHES = 10;
/** Merged completions per move and batch at least (as FastForward's MIN_BATCH_CHUNKS per move). */
const MIN_BATCH_CHUNKS = 5;

export class JointFastForward {
  /** Merged series: intervals between consecutive completions of any move, and their times. */
  private readonly intervals: number[] = [];
  private readonly times: number[] = [];
  /** Completions of each move after each merged completion, and the counters then. */
  private readonly counts: number[][] = [];
  private readonly snaps: Record<string, CounterSet>[] = [];
  private readonly done: number[];
  private last: number;
  private jumped = false;
  private jumpPs = 0;
  private skipped: number[];
  private halfWidthPs = 0;
  private counterAdds: Record<string, CounterSet> = {};
  private method = '';
  private readonly target: number;

  constructor(private readonly o: JointOptions) {
    this.done = o.moves.map(() => 0);
    this.skipped = o.moves.map(() => 0);
    this.last = o.startPs;
    this.target = o.targetRelative ?? JOINT_TARGET;
  }

  /**
   * Move `i` has written a chunk at `nowPs`; `nextRead` gives every move's first unread chunk. Returns
   * how many chunks each move should skip now, or null (no jump).
   */
  chunkWritten(i: number, nowPs: number, nextRead: number[]): number[] | null {
    this.done[i]++;
    if (this.jumped) return null;
    const n = this.o.moves.length;
    this.intervals.push(nowPs - this.last);
    this.times.push(nowPs);
    this.last = nowPs;
    this.counts.push(this.done.slice());
    this.snaps.push(this.o.counters());
    const minObs = MIN_BATCH_CHUNKS * BATCHES * n;
    if (this.intervals.length < minObs) return null;
    const trunc = mser5(this.intervals);
    if (this.intervals.length - trunc < minObs) return null;
    const bm = batchMeans(this.intervals, trunc, BATCHES, n);
    if (!bm) return null;
    // Equal rates: each move's progress over the window within two chunks of every other's.
    const w = this.intervals.length - bm.used - 1; // merged completion before the window (-1: the start)
    const from = w >= 0 ? this.counts[w] : this.o.moves.map(() => 0);
    const now = this.done;
    const progress = now.map((c, k) => c - from[k]);
    const leadChange = Math.max(...progress) - Math.min(...progress);
    if (leadChange > 2) return null;
    const maxSkip = Math.min(...this.o.moves.map((mv, k) => Math.min(mv.chunks - 1, mv.fullChunks) - nextRead[k]));
    if (maxSkip < 1) return null;
    const m = maxSkip * n; // merged completions jumped
    const tailN = this.o.moves.reduce((t, mv, k) => t + mv.chunks - now[k], 0) - m;
    const t = tQuantile(CONFIDENCE, bm.batches - 1);
    const sd = Math.sqrt(m * m * bm.stdError ** 2 + (m + 2 * Math.max(0, tailN)) * bm.varPerObservation);
    const lead = (leadChange + 1) * n * bm.mean;
    const hw = t * sd + m * bm.drift + 2 * bm.phaseRange + lead;
    const shortest = Math.min(...this.o.moves.map((mv, k) => nowPs - this.o.startPs + (mv.chunks - now[k]) * n * bm.mean));
    if (hw / shortest > this.target) return null;
    const D = m * bm.mean;
    const startSnap = w >= 0 ? this.snaps[w] : this.snaps[0];
    const startPs = w >= 0 ? this.times[w] : this.times[0];
    if (nowPs - startPs <= 0) return null;
    this.counterAdds = scaleDelta(startSnap, this.snaps[this.snaps.length - 1], D / (nowPs - startPs));
    this.jumped = true;
    this.jumpPs = Math.round(D);
    this.skipped = this.o.moves.map(() => maxSkip);
    this.halfWidthPs = hw;
    this.method = `statistical, ${n} moves jumped together: MSER-5 truncated ${trunc} completions, ${bm.batches} batch means of ${bm.used / bm.batches} merged completions (equal rates: leads changed by ${leadChange} chunk${leadChange === 1 ? '' : 's'}); ${maxSkip} chunks per move jumped`;
    return this.skipped;
  }

  finish(rawEndPs: number[]): JointOutcome {
    const endPs = rawEndPs.map((e) => e + this.jumpPs);
    const fidelity: Fidelity[] = this.o.moves.map((mv, k) => {
      const elapsed = endPs[k] - this.o.startPs;
      const h = this.halfWidthPs;
      return {
        mode: 'fast',
        exact: !this.jumped,
        relativeError99: this.jumped ? h / Math.max(1, elapsed - h) : 0,
        detailedChunks: mv.chunks - this.skipped[k],
        totalChunks: mv.chunks,
        method: this.jumped ? this.method : 'exact: no joint steady state found to jump (or the moves ran at different rates); every TLP simulated',
      };
    });
    return { endPs, counterAdds: this.counterAdds, skipped: this.skipped, fidelity };
  }
}

/** (after - before) x k per counter, rounded; maxima are not additive and stay as simulated. */
function scaleDelta(before: Record<string, CounterSet>, after: Record<string, CounterSet>, k: number): Record<string, CounterSet> {
  const out: Record<string, CounterSet> = {};
  for (const [name, set] of Object.entries(after)) {
    out[name] = {};
    for (const [key, v] of Object.entries(set)) {
      if (key.startsWith('max')) continue;
      out[name][key] = Math.round((v - (before[name]?.[key] ?? 0)) * k);
    }
  }
  return out;
}

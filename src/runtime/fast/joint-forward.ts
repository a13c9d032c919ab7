import type { CounterSet } from '../../core/trace.js';
// The batch count and the least batch are the single move's; here MIN_BATCH_CHUNKS counts merged completions per move.
import { BATCHES, CONFIDENCE, MIN_BATCH_CHUNKS, scaleDelta, type Fidelity } from './fast-forward.js';
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
 * skip in proportion to their progress over the window, and the interval adds what one chunk of
 * uncertainty in each move's progress costs over its skip. There is no exact search: the joint state
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

/**
 * Merged completions kept at most: bounds the memory (counts and counter snapshots) and the cost of
 * the analysis. A set of moves with no steady state by then runs on in detail.
 */
const MAX_OBSERVATIONS = 8192;
/**
 * After this many merged completions without reaching the target, the jump is taken at any interval
 * up to FALLBACK_TARGET, and the result states it: some sets of moves swing too slowly for the batch
 * means to settle (on modern, 4 conventional pairs at x8: ±1.5-2% for as long as they were watched),
 * and simulating all of such a set in detail costs minutes for no better a figure than a stated ±2%.
 */
const FALLBACK_AFTER = 4096;
const FALLBACK_TARGET = 0.05;
/** A counter snapshot every this many completions (the window's start is taken at one). */
const SNAP_EVERY = 8;

export class JointFastForward {
  /** Merged series: intervals between consecutive completions of any move, and their times. */
  private intervals: number[] = [];
  private times: number[] = [];
  /** Completions of each move after each merged completion. */
  private counts: number[][] = [];
  /** Counter snapshots after every SNAP_EVERY-th completion (index into the series). */
  private snaps: { index: number; counters: Record<string, CounterSet> }[] = [];
  private readonly done: number[];
  private last: number;
  private jumped = false;
  private gaveUp = false;
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
    if (this.jumped || this.gaveUp) return null;
    const n = this.o.moves.length;
    this.intervals.push(nowPs - this.last);
    this.times.push(nowPs);
    this.last = nowPs;
    this.counts.push(this.done.slice());
    const len = this.intervals.length;
    if (len % SNAP_EVERY === 0) this.snaps.push({ index: len - 1, counters: this.o.counters() });
    if (len >= MAX_OBSERVATIONS) {
      this.gaveUp = true;
      this.intervals = [];
      this.times = [];
      this.counts = [];
      this.snaps = [];
      return null;
    }
    // Analysed once a round (n completions): the analysis is linear in the series.
    if (len % n !== 0) return null;
    const minObs = MIN_BATCH_CHUNKS * BATCHES * n;
    if (len < minObs) return null;
    const trunc = mser5(this.intervals);
    if (len - trunc < minObs) return null;
    const bm = batchMeans(this.intervals, trunc, BATCHES, n);
    if (!bm) return null;
    // The window starts at the last snapshot at or before the estimate's first observation.
    const first = len - bm.used;
    const snap = [...this.snaps].reverse().find((x) => x.index < first);
    if (!snap) return null;
    const ws = snap.index;
    const windowPs = nowPs - this.times[ws];
    const now = this.done;
    const progress = now.map((c, k) => c - this.counts[ws][k]);
    if (progress.some((p) => p < 1) || windowPs <= 0) return null;
    const leadChange = Math.max(...progress) - Math.min(...progress);
    const limits = this.o.moves.map((mv, k) => Math.min(mv.chunks - 1, mv.fullChunks) - nextRead[k]);
    let skips: number[];
    let shareTerm: number;
    if (leadChange <= 2) {
      // Equal rates: every move skips the same chunks; each keeps its lead, as it would.
      const k = Math.min(...limits);
      skips = limits.map(() => k);
      shareTerm = (leadChange + 1) * n * bm.mean;
    } else {
      // Unequal rates: each move skips in proportion to its progress over the window; a move's rate
      // is known to one chunk in its progress, which the skip multiplies.
      const total = progress.reduce((a, b) => a + b, 0);
      const K = Math.min(...limits.map((l, k) => (l * total) / progress[k]));
      skips = progress.map((p) => Math.floor((K * p) / total));
      shareTerm = Math.max(...skips.map((x, k) => ((x / progress[k] + 1) * windowPs) / progress[k]));
    }
    if (skips.some((x) => x < 1)) return null;
    const m = skips.reduce((a, b) => a + b, 0); // merged completions jumped
    const tailN = this.o.moves.reduce((t, mv, k) => t + mv.chunks - now[k], 0) - m;
    const t = tQuantile(CONFIDENCE, bm.batches - 1);
    const sd = Math.sqrt(m * m * bm.stdError ** 2 + (m + 2 * Math.max(0, tailN)) * bm.varPerObservation);
    const hw = t * sd + m * bm.drift + 2 * bm.phaseRange + shareTerm;
    const shortest = Math.min(...this.o.moves.map((mv, k) => nowPs - this.o.startPs + ((mv.chunks - now[k]) * windowPs) / progress[k]));
    const fallback = len >= FALLBACK_AFTER;
    if (hw / shortest > (fallback ? Math.max(this.target, FALLBACK_TARGET) : this.target)) return null;
    const D = m * bm.mean;
    this.counterAdds = scaleDelta(snap.counters, this.o.counters(), D / windowPs, true);
    this.jumped = true;
    this.jumpPs = Math.round(D);
    this.skipped = skips;
    this.halfWidthPs = hw;
    const rates = leadChange <= 2 ? `equal rates: leads changed by ${leadChange} chunk${leadChange === 1 ? '' : 's'}` : `unequal rates: each skips in proportion to its progress (${progress.join(':')})`;
    const late = fallback && hw / shortest > this.target ? `; the ${(100 * this.target).toFixed(0)}% target was not reached within ${FALLBACK_AFTER} completions, so the interval is wider` : '';
    this.method = `statistical, ${n} moves jumped together: MSER-5 truncated ${trunc} completions, ${bm.batches} batch means of ${bm.used / bm.batches} merged completions (${rates}); ${skips.join(', ')} chunks jumped${late}`;
    this.intervals = [];
    this.times = [];
    this.counts = [];
    this.snaps = [];
    return skips;
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
        method: this.jumped ? this.method : `exact: no joint steady state found to jump${this.gaveUp ? ` within ${MAX_OBSERVATIONS} completions` : ''}; every TLP simulated`,
      };
    });
    return { endPs, counterAdds: this.counterAdds, skipped: this.skipped, fidelity };
  }
}

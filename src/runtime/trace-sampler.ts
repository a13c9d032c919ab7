/**
 * What a trace-event file and a timeline chart are drawn from (issue "See a move happen"): the trace
 * registry's counters and gauges sampled at fixed window boundaries, and the DC operator's commands.
 *
 * The sampler is the runtime's, not the model's: it is an event the runtime schedules on the
 * simulation's scheduler every window, and it only reads (`TraceRegistry.snapshot()` and `gauges()`),
 * so no device knows of it and no model event moves. It schedules itself again only while other events
 * are pending (an idle fabric stays idle). Its own events are counted (`ownEvents`) so a run's event
 * count can leave them out. Moves that record a trace run at the full fidelity (the fast one jumps
 * chunks, which would leave holes in every track).
 *
 * Bounded: at most MAX_SAMPLES boundaries are kept. When a run outgrows them, every other boundary is
 * dropped and the window doubles (counters are cumulative, so a coarser window still sums to the same
 * busy time); the window is thus sized to the run whatever it started at. At most MAX_COMMANDS
 * commands are kept; later ones are counted as dropped.
 */
import type { VirtualScheduler } from '../core/scheduler.js';
import type { CounterSet, TraceRegistry } from '../core/trace.js';
import type { CommandInfo, MoveObserver } from '../host/dc/operator.js';

/** Window boundaries kept (even); past it, every other one is dropped and the window doubles. */
export const MAX_SAMPLES = 4096;
/** NVMe commands kept as slices (a 1 GiB move in 128 KiB chunks issues 16 384). */
export const MAX_COMMANDS = 200_000;
/** The first window when none is asked: 1 µs, doubled as the run grows (so about MAX_SAMPLES / 2..MAX_SAMPLES windows per run). */
export const DEFAULT_FIRST_WINDOW_PS = 1_000_000;

/** Every counter and gauge at one window boundary. `ps`: the time on the trace's clock; `simPs`: simulated time (the same in a simulation). */
export interface TraceSample {
  ps: number;
  simPs: number;
  /** Live: the simulated time of the node that counts each source, ps (each node keeps its own clock); absent: simPs for all. */
  simPsOf?: Record<string, number>;
  counters: Record<string, CounterSet>;
  gauges: Record<string, CounterSet>;
}

/** One NVMe command of the DC operator: issued and completed (simulated ps), the move it belongs to. */
export interface CommandSlice extends CommandInfo {
  move: number;
  startPs: number;
  /** -1 while outstanding (a failed run). */
  endPs: number;
  ok: boolean;
}

/**
 * Past MAX_SAMPLES + 1 boundaries, keeps boundaries 0, 2, 4, ... (the last, index MAX_SAMPLES, is
 * even: the newest stays) and says so: the caller's window is now twice as long.
 */
export function thinSamples(samples: TraceSample[]): boolean {
  if (samples.length <= MAX_SAMPLES) return false;
  let j = 0;
  for (let i = 0; i < samples.length; i += 2) samples[j++] = samples[i];
  samples.length = j;
  return true;
}

export class TraceSampler {
  readonly samples: TraceSample[] = [];
  readonly commands: CommandSlice[] = [];
  droppedCommands = 0;
  /** Sampling events run (not the model's). */
  ownEvents = 0;
  /** Times the window doubled to stay within MAX_SAMPLES. */
  coarsened = 0;
  private stopped = false;

  constructor(
    private readonly trace: TraceRegistry,
    private readonly scheduler: VirtualScheduler,
    /** Current window, ps (doubles as the run grows). */
    public windowPs: number,
    /** Counter sets from outside the fabric's registry (a fault injector's counts as `faults`). */
    private readonly extra: Record<string, () => CounterSet> = {},
  ) {
    if (!Number.isInteger(windowPs) || windowPs < 1000) throw new Error(`trace window ${windowPs} ps is below 1 ns`);
  }

  /** Takes the first boundary now and schedules the next. */
  start(): void {
    this.take();
    this.scheduler.schedule(this.windowPs, this.tick);
  }

  /** The last boundary (the end of the last, partial, window), and no more sampling. */
  finish(): void {
    if (this.stopped) return;
    this.stopped = true;
    const last = this.samples[this.samples.length - 1];
    if (!last || last.ps < this.scheduler.now()) this.take();
  }

  /** Hooks for move `move`'s operator (chained before `inner`'s, which keeps its answer). */
  observer(move: number, inner?: MoveObserver): MoveObserver {
    const open = new Map<CommandInfo, CommandSlice>();
    return {
      ...(inner?.chunkWritten ? { chunkWritten: (c: number, n: number) => inner.chunkWritten!(c, n) } : {}),
      commandIssued: (c) => {
        inner?.commandIssued?.(c);
        if (this.commands.length >= MAX_COMMANDS) {
          this.droppedCommands++;
          return;
        }
        const s: CommandSlice = { ...c, move, startPs: this.scheduler.now(), endPs: -1, ok: false };
        this.commands.push(s);
        open.set(c, s);
      },
      commandCompleted: (c, ok) => {
        inner?.commandCompleted?.(c, ok);
        const s = open.get(c);
        if (!s) return;
        open.delete(c);
        s.endPs = this.scheduler.now();
        s.ok = ok;
      },
    };
  }

  private readonly tick = (): void => {
    if (this.stopped) return;
    this.ownEvents++;
    this.take();
    if (thinSamples(this.samples)) {
      this.windowPs *= 2;
      this.coarsened++;
    }
    // Only while the model has work: a sampler alone must not keep an idle fabric running.
    if (this.scheduler.pending() > 0) this.scheduler.schedule(this.windowPs, this.tick);
  };

  private take(): void {
    const now = this.scheduler.now();
    const counters = this.trace.snapshot();
    for (const [k, read] of Object.entries(this.extra)) counters[k] = { ...read() };
    this.samples.push({ ps: now, simPs: now, counters, gauges: this.trace.gauges() });
  }
}

/** What a run recorded for a trace (handed to `MovesRequest.traceRecording.done`). */
export interface TraceRecording {
  samples: TraceSample[];
  commands: CommandSlice[];
  droppedCommands: number;
  /** The window at the end (after any doubling), ps. */
  windowPs: number;
  coarsened: number;
  /** Slot -> device name, as MovesResult.devices. */
  devices: Record<string, string>;
}

/** `MovesRequest.traceRecording`: record samples and commands (full fidelity only). */
export interface TraceRecordingRequest {
  /** The first window, ps (default DEFAULT_FIRST_WINDOW_PS; doubled past MAX_SAMPLES windows). */
  firstWindowPs?: number;
  extra?: Record<string, () => CounterSet>;
  done: (r: TraceRecording) => void;
}

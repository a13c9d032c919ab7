import { DconnectError } from '../../core/errors.js';
import type { CounterSet } from '../../core/trace.js';
import { deviceKinds } from '../../topology/device-registry.js';
import type { Fabric } from '../../topology/builder.js';
import { FIRST_HOST } from '../../topology/schema.js';
import { boot, type BootedHost } from '../boot.js';

/**
 * Running a planned transfer on a fabric (docs/architecture.md "One transfer engine"): the hosts that
 * take part boot, the run goes to its end with progress, and the result's common parts (counters with
 * the fast path's additions, the table of devices) are read the same way for every kind of move.
 */

/** Events one run may execute at most (a bound, not a budget: a 2 TiB move at full fidelity stays below it). */
export const MAX_RUN_EVENTS = 2e10;
/** Progress is reported every this many events (cheap to ask, often enough for a progress bar). */
export const PROGRESS_EVERY_EVENTS = 1 << 20;

/**
 * Boots the named hosts of a fabric, one after the other in the fabric's order (the others stay off);
 * each finds its own ExpEther group's devices.
 */
export function bootHosts(fabric: Fabric, names: ReadonlySet<string>, maxTransferBytes: number): Map<string, BootedHost> {
  const booted = new Map<string, BootedHost>();
  for (const h of fabric.hosts) if (names.has(h.name)) booted.set(h.name, boot(fabric, { maxTransferBytes, host: h.name }));
  return booted;
}

/** The error of a run stopped by its AbortSignal. */
export function abortedError(): DconnectError {
  return new DconnectError('ABORTED', 'the run was cancelled (AbortSignal)');
}

/** Throws ABORTED if `signal` is aborted: runs check it before they start and between slices. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError();
}

/**
 * The parts of one transfer that must all end: the DC operator's moves, a NIC move's clients, a file
 * copy's host sequence. Each part reports once, done (with its result) or failed; the transfer has
 * finished when every part is done (`endPs` is then the simulated time it did) and failed at the first
 * error. Simulated runs run the scheduler until then (`runTransfer`); a live job's segment is one on
 * the event loop, told through `ended`. The one place that tracks how a transfer ends.
 */
export class TransferParts<S = void> {
  private readonly results: S[] = [];
  private readonly done: boolean[] = [];
  private left = 0;
  /** The first error a part reported (the transfer failed), or null. */
  failure: Error | null = null;
  /** When the last part reported done, ps (-1: not yet). */
  endPs = -1;
  private over = false;

  constructor(
    private readonly scheduler: { now(): number },
    /** Called once: when every part is done, or at the first failure. */
    private readonly ended?: (parts: TransferParts<S>) => void,
  ) {}

  /** Starts a part: `start` gets the callbacks it reports through (a second report of a part is ignored). Returns the part's index. */
  add(start: (done: (result: S) => void, fail: (e: Error) => void) => void): number {
    const i = this.done.length;
    this.done.push(false);
    this.results.push(undefined as S);
    this.left++;
    start(
      (result) => {
        if (this.done[i]) return;
        this.done[i] = true;
        this.results[i] = result;
        if (--this.left === 0) {
          this.endPs = this.scheduler.now();
          this.end();
        }
      },
      (e) => {
        this.failure ??= e;
        this.end();
      },
    );
    return i;
  }

  get finished(): boolean {
    return this.left === 0 && this.failure === null;
  }

  private end(): void {
    if (this.over) return;
    this.over = true;
    this.ended?.(this);
  }

  /** Every part's result, in the order added; throws the first failure, or says that `what` did not finish. */
  settled(what: string): S[] {
    if (this.failure) throw this.failure;
    if (this.left > 0) throw new Error(`${what} did not finish: the fabric went idle with commands or frames outstanding`);
    return this.results;
  }
}

/**
 * Runs the scheduler until the transfer's parts have finished or one failed (or MAX_RUN_EVENTS, or
 * nothing is left to run), in slices of PROGRESS_EVERY_EVENTS events: after each it calls `progress`
 * and looks at `signal` (an abort throws DconnectError 'ABORTED' within one slice). The run is
 * synchronous, so on the caller's thread only a callback (`progress`) can abort it;
 * experiments/background.ts runs it on a worker, whose abort stops the thread at once.
 */
export function runTransfer(fabric: Fabric, parts: { readonly failure: Error | null; readonly finished: boolean }, o: { progress?: () => void; signal?: AbortSignal } = {}): void {
  const scheduler = fabric.scheduler;
  let nextSlice = scheduler.eventsExecuted + PROGRESS_EVERY_EVENTS;
  scheduler.run({
    maxEvents: MAX_RUN_EVENTS,
    stop: () => {
      if (scheduler.eventsExecuted >= nextSlice) {
        nextSlice = scheduler.eventsExecuted + PROGRESS_EVERY_EVENTS;
        o.progress?.();
        checkAborted(o.signal);
      }
      return parts.failure !== null || parts.finished;
    },
  });
}

/** Where a transfer starts: the counters, the events executed and the simulated time then (`onStart` is told the time: faults' down windows count from it). */
export interface TransferStart {
  before: Record<string, CounterSet>;
  eventsBefore: number;
  startPs: number;
}

export function beginTransfer(fabric: Fabric, onStart?: (startPs: number) => void): TransferStart {
  const start = { before: fabric.trace.snapshot(), eventsBefore: fabric.scheduler.eventsExecuted, startPs: fabric.scheduler.now() };
  onStart?.(start.startPs);
  return start;
}

/** Adds the fast path's share of the skipped chunks to a counter snapshot (counters the snapshot lacks stay out). */
export function addCounters(after: Record<string, CounterSet>, adds: Record<string, CounterSet>): void {
  for (const [name, set] of Object.entries(adds)) for (const [k, v] of Object.entries(set)) if (after[name]) after[name][k] += v;
}

/**
 * Which device sits in each slot, by the slot's trace prefix (`box0.slot2` -> `dcbuf0`), over the
 * booted hosts: names for the counters (a host other than the first's as `host1:sda`).
 */
export function deviceTable(hosts: Iterable<BootedHost>): Record<string, string> {
  const devices: Record<string, string> = {};
  for (const h of hosts) {
    const prefix = h.host.name === FIRST_HOST ? '' : `${h.host.name}:`;
    for (const d of deviceKinds.flatMap((k) => k.driver.devices(h.manager))) devices[`${d.box}.slot${d.slot}`] = `${prefix}${d.name}`;
  }
  return devices;
}

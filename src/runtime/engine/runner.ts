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
 * Runs the scheduler until the transfer has `finished` or `failed` (or MAX_RUN_EVENTS, or nothing is
 * left to run), in slices of PROGRESS_EVERY_EVENTS events: after each it calls `progress` and looks
 * at `signal` (an abort throws DconnectError 'ABORTED' within one slice). The run is synchronous, so
 * on the caller's thread only a callback (`progress`) can abort it; experiments/background.ts runs
 * it on a worker, whose abort stops the thread at once.
 */
export function runTransfer(fabric: Fabric, o: { finished: () => boolean; failed: () => boolean; progress?: () => void; signal?: AbortSignal }): void {
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
      return o.failed() || o.finished();
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

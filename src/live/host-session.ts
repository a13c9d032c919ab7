/**
 * The host node's sessions: the connection of its model to the boxes.
 *
 * A `HostSession` is one incarnation of the host's model: a fresh real-time scheduler and fabric part
 * under a new epoch (so the boxes rebuild theirs), then boot (PCI enumeration and NVMe bring-up over
 * the network). It lasts until something breaks it: its watchdog (watchdog.ts) judging a box lost,
 * a model error, or the host stopping. Then everything waiting on it (boot, the running job, NBD
 * requests) hears why, once.
 *
 * The `SessionManager` holds the current session, starts one when first needed (`booted()`), and keeps
 * what outlives a session: the NBD exports of the last booted one (NBD lists them even while a new one
 * boots) and the counters of the last one that ended (GET /counters shows them until a new one boots).
 */
import type { CounterSet } from '../core/trace.js';
import { startBoot, type BootedHost } from '../runtime/boot.js';
import type { Fabric } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';
import { SlotPool } from './live-job.js';
import { NbdIo, type NbdExportInfo } from './nbd-backend.js';
import { buildNodeFabric, type CrossingCable } from './node-fabric.js';
import { HOST_NODE } from './placement.js';
import { RealtimeScheduler, type Pace } from './realtime-scheduler.js';
import type { UdpTransport } from './udp-transport.js';
import { Watchdog, type Clock } from './watchdog.js';

export type BootedLive = BootedHost<RealtimeScheduler>;

export interface HostSessionOptions {
  topology: Topology;
  seed: number;
  /** Burst granularity's largest burst, bytes (0: per TLP). */
  burstBytes: number;
  pace: Pace;
  dilation: number;
  hardLimitMs?: number;
  /** The host's transport, its peers' addresses set; the session takes it over under `epoch`. */
  transport: UdpTransport;
  epoch: number;
  /** The watchdog's clock and --peer-timeout (watchdog.ts). */
  clock: Clock;
  peerTimeoutMs: number;
  /** A box with its address and pid, and where its log is, for messages. */
  label(box: string): string;
  logOf(box: string): string;
  log(line: string): void;
}

/** Largest NVMe transfer the host's driver asks for at boot (MDTS), bytes. */
const MAX_TRANSFER_BYTES = 32 << 20;

export class HostSession {
  readonly epoch: number;
  readonly scheduler: RealtimeScheduler;
  readonly fabric: Fabric<RealtimeScheduler>;
  /** The cables between this node and the boxes (what a live capture can record). */
  readonly crossing: CrossingCable[];
  readonly watchdog: Watchdog;
  /** Resolves once booted; rejects when the session ends first. */
  readonly booted: Promise<BootedLive>;
  host: BootedLive | null = null;
  pool: SlotPool | null = null;
  nbd: NbdIo | null = null;
  /** Why the session ended (null: it runs). */
  failed: Error | null = null;
  private readonly enders = new Set<(e: Error) => void>();

  constructor(private readonly o: HostSessionOptions) {
    this.epoch = o.epoch;
    o.transport.detachAll();
    o.transport.setEpoch(o.epoch);
    this.scheduler = new RealtimeScheduler({ dilation: o.dilation, pace: o.pace, hardLimitMs: o.hardLimitMs });
    const { fabric, crossing } = buildNodeFabric(o.topology, { node: HOST_NODE, seed: o.seed, scheduler: this.scheduler, transport: o.transport, burstBytes: o.burstBytes });
    this.fabric = fabric;
    this.crossing = crossing;
    this.watchdog = new Watchdog({ clock: o.clock, timeoutMs: o.peerTimeoutMs, lastHeardMs: (b) => o.transport.lastHeardMs(b), label: o.label, epoch: o.epoch, logOf: o.logOf, onLost: (e) => this.fail(e) });
    let resolve!: (h: BootedLive) => void;
    let reject!: (e: Error) => void;
    this.booted = new Promise<BootedLive>((res, rej) => ((resolve = res), (reject = rej)));
    this.booted.catch(() => {}); // observed by whoever awaits it
    this.onEnd(reject);
    this.scheduler.start((e) => this.fail(e));
    o.log(`session ${o.epoch}: booting (PCI enumeration and NVMe bring-up over the network)`);
    const bootWait = this.watchdog.waitOn(o.topology.boxes.map((b) => b.name));
    startBoot(
      fabric,
      { maxTransferBytes: MAX_TRANSFER_BYTES },
      (host) => {
        this.host = host;
        this.pool = new SlotPool(host);
        this.nbd = new NbdIo(host);
        bootWait();
        o.log(`session ${o.epoch}: booted: ${host.manager.blockDevices().map((d) => d.name).join(', ')}; relays ${host.manager.relays().map((r) => r.name).join(', ') || 'none'}`);
        resolve(host);
      },
      (e) => this.fail(e instanceof Error ? e : new Error(String(e))),
    );
  }

  /** Calls `fn` once if the session ends (at once if it has); the returned function unsubscribes. */
  onEnd(fn: (e: Error) => void): () => void {
    if (this.failed) {
      fn(this.failed);
      return () => {};
    }
    this.enders.add(fn);
    return () => void this.enders.delete(fn);
  }

  /** Ends the session (once): the model stops, the watchdog too, and every waiter hears `e`. */
  fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.watchdog.stop();
    this.scheduler.stop();
    this.o.log(`session ${this.epoch} ended: ${e.message}`);
    const enders = [...this.enders];
    this.enders.clear();
    for (const fn of enders) fn(e);
  }

  /** Stops the model and the watchdog without ending the session for its waiters (the host is stopping). */
  halt(): void {
    this.watchdog.stop();
    this.scheduler.stop();
  }

  /**
   * Runs `fn` on the booted session's NBD path inside a model event; the promise settles from the model,
   * or when the session ends. The watchdog waits on `box` (the drive's) meanwhile.
   */
  viaModel<T>(box: string | null, fn: (io: NbdIo, done: (e: Error | null, v?: T) => void) => void): Promise<T> {
    return this.booted.then(
      (host) =>
        new Promise<T>((resolve, reject) => {
          const release = this.watchdog.waitOn(box ? [box] : []);
          const off = this.onEnd(reject);
          const settle = (e: unknown, v?: T) => {
            release();
            off();
            if (e) reject(e);
            else resolve(v as T);
          };
          host.fabric.scheduler.inject(() => {
            try {
              fn(this.nbd!, (e, v) => settle(e, v));
            } catch (e) {
              settle(e);
            }
          });
        }),
    );
  }

  /** The box a block device is in (the watchdog waits on it while a request is out); null before boot. */
  boxOf(device: string): string | null {
    return this.host?.manager.blockDevices().find((d) => d.name === device)?.box ?? null;
  }
}

/** The current session and what outlives one (see the file comment). */
export class SessionManager {
  private session: HostSession | null = null;
  /** The exports of the last booted session. */
  exports: NbdExportInfo[] = [];
  /** The counters of the last session that ended. */
  lastTrace: Record<string, CounterSet> = {};

  /** `start` makes a new session (resolving the peers and taking a new epoch first). */
  constructor(private readonly start: () => HostSession) {}

  /** The running session, or null between sessions. */
  current(): HostSession | null {
    return this.session;
  }

  /** The running session, starting one if there is none. */
  ensure(): HostSession {
    if (this.session) return this.session;
    const s = this.start();
    this.session = s;
    s.onEnd(() => {
      this.lastTrace = s.fabric.trace.snapshot();
      if (this.session === s) this.session = null;
    });
    s.booted.then(
      () => void (this.exports = s.nbd!.exports()),
      () => {},
    );
    return s;
  }

  /** The booted host of the running session (a new session's when none runs). */
  booted(): Promise<BootedLive> {
    return this.ensure().booted;
  }

  /** A keepalive from a box, for the running session's watchdog. */
  keepalive(box: string, incarnation: number, state: number): void {
    this.session?.watchdog.keepalive(box, incarnation, state);
  }

  /** Stops the running session's model and watchdog when the host stops; its job's record stays as it is (the next host fails it as orphaned, with its marker). */
  halt(): void {
    this.session?.halt();
  }
}

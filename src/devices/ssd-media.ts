import type { RngStream } from '../core/rng.js';
import type { StateDigest } from '../core/digest.js';
import type { Scheduler } from '../core/scheduler.js';
import { BandwidthServer } from './bandwidth-server.js';

export interface MediaParams {
  /** Sustained media read rate, 10^6 bytes/s. */
  readMBps: number;
  /** Sustained media write (program) rate, 10^6 bytes/s. */
  writeMBps: number;
  /** Per-command access latency before the first data of a read is available, us. */
  readLatencyUs: number;
  /** Per-command latency from the last byte programmed to the command's completion, us. */
  writeLatencyUs: number;
  /** Each command's latency is scaled by a uniform draw in [1 - j, 1 + j]. */
  latencyJitterFraction: number;
}

/**
 * Flash timing: reads and writes each go through a bandwidth server shared by all commands (the
 * channels' aggregate rate); per-command latency overlaps with other commands' transfers.
 */
export class SsdMedia {
  private readonly reader: BandwidthServer;
  private readonly writer: BandwidthServer;
  readonly counters = { readBytes: 0, writtenBytes: 0, readBusyPs: 0, writeBusyPs: 0 };

  constructor(
    readonly params: MediaParams,
    private readonly rng: RngStream,
    /** When given, the busy counters of a snapshot leave out work booked beyond now. */
    clock?: Pick<Scheduler, 'now'>,
  ) {
    this.reader = new BandwidthServer(1e6 / params.readMBps, clock);
    this.writer = new BandwidthServer(1e6 / params.writeMBps, clock);
  }

  /** The counters with readBusyPs and writeBusyPs as spent up to now (not booked ahead). */
  snapshot(): Record<string, number> {
    return { ...this.counters, readBusyPs: this.reader.doneBusyPs(), writeBusyPs: this.writer.doneBusyPs() };
  }

  /** Both servers' backlogs and the latency stream's position (a stream in use never repeats: no exact period with jitter). */
  digest(d: StateDigest): void {
    this.reader.digest(d);
    this.writer.digest(d);
    if (this.params.latencyJitterFraction > 0) d.str(this.rng.position());
  }

  private jitter(): number {
    const j = this.params.latencyJitterFraction;
    return j > 0 ? this.rng.uniform(1 - j, 1 + j) : 1;
  }

  /** A read command's latency, ps (drawn once per command). */
  readLatencyPs(): number {
    return Math.round(this.params.readLatencyUs * 1e6 * this.jitter());
  }

  writeLatencyPs(): number {
    return Math.round(this.params.writeLatencyUs * 1e6 * this.jitter());
  }

  /** Time the `bytes` read starting no earlier than `earliestPs` are in the controller's buffer. */
  readUnit(earliestPs: number, bytes: number): number {
    const done = this.reader.serve(earliestPs, bytes);
    this.counters.readBytes = this.reader.bytes;
    this.counters.readBusyPs = this.reader.busyPs;
    return done;
  }

  /** Time the `bytes` that arrived at `arrivalPs` are programmed. */
  programUnit(arrivalPs: number, bytes: number): number {
    const done = this.writer.serve(arrivalPs, bytes);
    this.counters.writtenBytes = this.writer.bytes;
    this.counters.writeBusyPs = this.writer.busyPs;
    return done;
  }
}

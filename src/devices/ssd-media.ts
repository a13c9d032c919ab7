import type { RngStream } from '../core/rng.js';

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
  private readBusyUntilPs = 0;
  private writeBusyUntilPs = 0;
  private readonly readPsPerByte: number;
  private readonly writePsPerByte: number;
  readonly counters = { readBytes: 0, writtenBytes: 0, readBusyPs: 0, writeBusyPs: 0 };

  constructor(
    readonly params: MediaParams,
    private readonly rng: RngStream,
  ) {
    this.readPsPerByte = 1e6 / params.readMBps;
    this.writePsPerByte = 1e6 / params.writeMBps;
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
    const start = Math.max(earliestPs, this.readBusyUntilPs);
    const dur = Math.ceil(bytes * this.readPsPerByte);
    this.readBusyUntilPs = start + dur;
    this.counters.readBytes += bytes;
    this.counters.readBusyPs += dur;
    return this.readBusyUntilPs;
  }

  /** Time the `bytes` that arrived at `arrivalPs` are programmed. */
  programUnit(arrivalPs: number, bytes: number): number {
    const start = Math.max(arrivalPs, this.writeBusyUntilPs);
    const dur = Math.ceil(bytes * this.writePsPerByte);
    this.writeBusyUntilPs = start + dur;
    this.counters.writtenBytes += bytes;
    this.counters.writeBusyPs += dur;
    return this.writeBusyUntilPs;
  }
}

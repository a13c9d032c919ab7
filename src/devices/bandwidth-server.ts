/** A bandwidth server: requests are served one after another at a fixed rate (flash channels, DDR). */
import type { StateDigest } from '../core/digest.js';

export class BandwidthServer {
  private busyUntilPs = 0;
  busyPs = 0;
  bytes = 0;

  constructor(private readonly psPerByte: number) {}

  digest(d: StateDigest): void {
    d.until(this.busyUntilPs);
  }

  /** Serves `bytes` no earlier than `earliestPs`; returns when they are done. */
  serve(earliestPs: number, bytes: number): number {
    const start = Math.max(earliestPs, this.busyUntilPs);
    const dur = Math.ceil(bytes * this.psPerByte);
    this.busyUntilPs = start + dur;
    this.busyPs += dur;
    this.bytes += bytes;
    return this.busyUntilPs;
  }
}

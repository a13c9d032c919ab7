/** A bandwidth server: requests are served one after another at a fixed rate (flash channels, DDR). */
export class BandwidthServer {
  private busyUntilPs = 0;
  busyPs = 0;
  bytes = 0;

  constructor(private readonly psPerByte: number) {}

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

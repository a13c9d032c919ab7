/**
 * The NBD server's admission across connections: a byte budget shared by every connection, so that
 * READ/WRITE payloads in flight are bounded for the whole server, not only per connection (16
 * connections each with two 32 MiB reads once took the host from 129 to 712 MiB).
 *
 * A request takes its payload's bytes before its WRITE payload is read or its READ goes to the backend,
 * and gives them back when its reply has been handed to the kernel (the socket's write callback) or
 * dropped: so unsent reply bytes count too. Waiters are served first come, first served (a large
 * request is not starved by small ones); a request larger than the whole budget waits until nothing is
 * taken, then goes alone. Nothing here waits on a client: a taker holds bytes only while the backend
 * works and the kernel accepts its reply (a client that stops reading is cut off by the server's
 * reply-stall deadline, which returns its bytes).
 */
export class ByteBudget {
  private takenBytes = 0;
  private readonly queue: { bytes: number; grant: () => void }[] = [];
  /** The most ever taken at once (a test's measure of the bound). */
  highWaterBytes = 0;
  /** Requests that had to wait for bytes. */
  waits = 0;

  constructor(readonly limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes <= 0) throw new Error(`ByteBudget: limit ${limitBytes} is not a positive integer`);
  }

  get taken(): number {
    return this.takenBytes;
  }

  private fits(bytes: number): boolean {
    return this.takenBytes === 0 || this.takenBytes + bytes <= this.limitBytes;
  }

  /**
   * Resolves once `bytes` are taken; the caller must `give(bytes)` back exactly once. `signal` aborting
   * while it waits rejects it (nothing taken).
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes === 0) return Promise.resolve();
    if (this.queue.length === 0 && this.fits(bytes)) {
      this.grant(bytes);
      return Promise.resolve();
    }
    this.waits++;
    return new Promise((resolve, reject) => {
      const entry = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
        this.pump(); // the head may have been the one that did not fit
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(entry);
    });
  }

  give(bytes: number): void {
    if (bytes === 0) return;
    if (bytes > this.takenBytes) throw new Error(`ByteBudget: giving back ${bytes} bytes with ${this.takenBytes} taken`);
    this.takenBytes -= bytes;
    this.pump();
  }

  private grant(bytes: number): void {
    this.takenBytes += bytes;
    if (this.takenBytes > this.highWaterBytes) this.highWaterBytes = this.takenBytes;
  }

  private pump(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
      const e = this.queue.shift()!;
      this.grant(e.bytes);
      e.grant();
    }
  }
}

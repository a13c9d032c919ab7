import { call, type Op, type Seq } from '../coroutine.js';

/**
 * What a file system reads and writes through: a block device by byte offset (multiples of its block
 * size). In simulation it is the NVMe driver over the fabric (`nvme-block-io.ts`), so every metadata
 * byte crosses the host link; in tests, memory. Operations are coroutine ops (host/coroutine.ts): the
 * file system is written as straight-line generators and never sees who completes them, or when.
 */
export interface BlockIo {
  readonly sizeBytes: number;
  /** The device's block size: every offset and length is a multiple of it. */
  readonly blockBytes: number;
  /** Each operation resumes with its result, or with an Error (a device error), which the helpers below throw inside the sequence. */
  read(offsetBytes: number, lengthBytes: number): Op<Uint8Array | Error>;
  write(offsetBytes: number, data: Uint8Array): Op<void | Error>;
  /** Completes once every write completed before it is durable. */
  flush(): Op<void | Error>;
}

/** Bytes each direction, for reports (metadata bytes over the host link). */
export interface IoCounts {
  readBytes: number;
  writtenBytes: number;
  reads: number;
  writes: number;
}

function thrown<T>(r: T | Error): T {
  if (r instanceof Error) throw r;
  return r;
}

export function* readBytes(io: BlockIo, offsetBytes: number, lengthBytes: number): Seq<Uint8Array> {
  return thrown(yield* call<Uint8Array | Error>(io.read(offsetBytes, lengthBytes)));
}

export function* writeBytes(io: BlockIo, offsetBytes: number, data: Uint8Array): Seq<void> {
  thrown(yield* call<void | Error>(io.write(offsetBytes, data)));
}

export function* flushIo(io: BlockIo): Seq<void> {
  thrown(yield* call<void | Error>(io.flush()));
}

/**
 * Runs a sequence whose operations all complete at once (a memory device): a loop, not recursion, so
 * thousands of block reads need no stack. An operation that does not complete synchronously is a bug.
 */
export function runSync<R>(seq: Seq<R>): R {
  let input: unknown;
  for (;;) {
    const r = seq.next(input);
    if (r.done) return r.value;
    let completed = false;
    r.value((v) => {
      input = v;
      completed = true;
    });
    if (!completed) throw new Error('runSync: an operation did not complete synchronously (use spawn on a scheduler)');
  }
}

/** A block device in memory: tests' images, and a reader of image files for `ls` before any fabric exists. */
export class MemoryBlockIo implements BlockIo {
  readonly counts: IoCounts = { readBytes: 0, writtenBytes: 0, reads: 0, writes: 0 };
  constructor(
    readonly bytes: Uint8Array,
    readonly blockBytes = 512,
  ) {}

  get sizeBytes(): number {
    return this.bytes.length;
  }

  read(offsetBytes: number, lengthBytes: number): Op<Uint8Array> {
    return (k) => {
      this.check(offsetBytes, lengthBytes);
      this.counts.readBytes += lengthBytes;
      this.counts.reads++;
      k(this.bytes.slice(offsetBytes, offsetBytes + lengthBytes));
    };
  }

  write(offsetBytes: number, data: Uint8Array): Op<void> {
    return (k) => {
      this.check(offsetBytes, data.length);
      this.counts.writtenBytes += data.length;
      this.counts.writes++;
      this.bytes.set(data, offsetBytes);
      k(undefined);
    };
  }

  flush(): Op<void> {
    return (k) => k(undefined);
  }

  private check(off: number, len: number): void {
    if (off % this.blockBytes !== 0 || len % this.blockBytes !== 0 || off < 0 || off + len > this.bytes.length) {
      throw new RangeError(`memory block device: access [${off}, ${off + len}) is unaligned or outside 0..${this.bytes.length}`);
    }
  }
}

/**
 * An NBD server (NetworkBlockDevice/nbd doc/proto.md, fixed newstyle) over a Unix socket (plain) and/or
 * TCP (TLS-PSK required unless `tcpInsecure`: nbd-tls.ts), independent of the model: what it serves comes from an `NbdBackend` (exports, read, write,
 * flush, trim, write zeroes). `nbdinfo`, `nbdcopy`, `nbdsh`, `qemu-img` and `qemu-io` use it unmodified.
 *
 * ## One connection's state machine
 *
 * ```
 *  accept ──(connections ≥ maxConnections)──> told "server full" (ERR_POLICY to every option; `accept`)
 *    │ S: NBDMAGIC IHAVEOPT u16 FIXED_NEWSTYLE|NO_ZEROES
 *    v
 *  CLIENT_FLAGS  C: u32 ── unknown bit ──> hard close
 *    v
 *  OPTIONS  C: IHAVEOPT u32 option u32 length, data   (bad magic, > maxOptionBytes or > MAX_OPTIONS
 *    │         options -> hard close; an oversize option first gets NBD_REP_ERR_TOO_BIG)
 *    ├ LIST            -> one NBD_REP_SERVER per export (name + description), ACK
 *    ├ INFO            -> REP_INFO EXPORT, BLOCK_SIZE (always), NAME / DESCRIPTION if asked, ACK;
 *    │                    unknown export -> NBD_REP_ERR_UNKNOWN; malformed -> NBD_REP_ERR_INVALID
 *    ├ STRUCTURED_REPLY -> ACK (READ replies become OFFSET_DATA chunks, errors ERROR chunks)
 *    ├ LIST/SET_META_CONTEXT -> base:allocation only (extents from backend.blockStatus; all data without it)
 *    ├ TLS required, not started: STARTTLS -> ACK, TLS handshake, options go on inside TLS;
 *    │                    any other option but ABORT -> NBD_REP_ERR_TLS_REQD (EXPORT_NAME: close)
 *    ├ anything else (STARTTLS on a plain listener included) -> NBD_REP_ERR_UNSUP, keep parsing
 *    ├ ABORT           -> ACK, then close                                   ──> CLOSED
 *    ├ EXPORT_NAME     -> u64 size, u16 flags (+124 zeroes unless NO_ZEROES);
 *    │                    unknown export -> hard close (the option has no error reply)
 *    └ GO              -> as INFO, and after ACK:
 *    v
 *  TRANSMISSION  C: request (28 bytes: magic, flags, type, cookie, offset, length) [+ WRITE payload]
 *    │  bad magic, or an unknown command flagged as carrying a payload -> hard close
 *    │  before reading a request: wait while maxInFlightPerConnection requests are in flight or the
 *    │  socket's unsent replies exceed WRITE_HIGH_WATER (the socket is not read: backpressure);
 *    │  after its header: wait while its payload would exceed maxInFlightBytesPerConnection, then
 *    │  for the server-wide budget (maxInFlightBytes, nbd-admission.ts), held until the reply is written;
 *    │  unsent replies with no socket activity for replyStallMs -> disconnected (idle is fine)
 *    ├ invalid (unknown command or flag, read-only, range, alignment, oversize) -> error reply at once
 *    ├ READ WRITE TRIM WRITE_ZEROES CACHE BLOCK_STATUS -> backend call, reply when it settles
 *    │    (replies in completion order; each reply's bytes written in one go, never interleaved)
 *    ├ FLUSH -> waits for every request received before it on this connection to be answered, then
 *    │    backend.flush (which covers all connections: CAN_MULTI_CONN), then replies
 *    ├ DISC, or EOF from the client -> read no more; answer what is in flight, then close ──> CLOSED
 *    └ connection lost -> backend calls in flight complete, their replies are dropped    ──> CLOSED
 * ```
 *
 * ## Choices where the spec leaves room
 * - Size constraints: minimum block = the export's `blockBytes`, preferred = `preferredBlockBytes`
 *   (default max(4096, min)), maximum payload = `maxPayloadBytes` (default 32 MiB), sent in every
 *   INFO/GO reply. Requests not aligned to the minimum get EINVAL; so do READ/TRIM/CACHE/BLOCK_STATUS
 *   past the end, while WRITE and WRITE_ZEROES past the end get ENOSPC (proto.md "Error values"; nbdkit
 *   does the same). Nothing reaches the backend unless it is inside the export and aligned.
 * - Length 0 READ/WRITE/TRIM/WRITE_ZEROES/CACHE (offset ≤ size, aligned) succeed without a backend call.
 * - A READ longer than the maximum payload gets EINVAL. A WRITE refused for any reason (longer than
 *   the maximum payload included) gets its error after its payload is skipped as it arrives (counted
 *   in `payloadBytesDiscarded`, never buffered), as long as it is at most 2 × max(maxPayload, 32 MiB)
 *   bytes (proto.md: payloads up to 32 MiB SHOULD NOT count as denial of service; nbdkit discards up
 *   to twice its limit); a longer one closes the connection (a hard disconnect).
 * - Unknown command: EINVAL (no payload assumed, as for every command but WRITE); if it carries the
 *   extended-headers PAYLOAD_LEN flag (never negotiated), the connection is closed instead.
 * - Read-only export: WRITE/TRIM/WRITE_ZEROES get EPERM; FUA/TRIM/WRITE_ZEROES are not advertised.
 * - TRIM with FUA: backend.trim then backend.flush. FAST_ZERO is not advertised (EINVAL if set).
 * - Errors after STRUCTURED_REPLY are NBD_REPLY_TYPE_ERROR chunks with a message; successes other
 *   than READ and BLOCK_STATUS are simple replies (allowed: no payload).
 * - Backend errors: `code` OUT_OF_RANGE / UNALIGNED -> EINVAL, DEVICE_ERROR -> EIO, NOSPC -> ENOSPC,
 *   anything else -> EIO.
 * - An empty export name selects the first export.
 *
 * Memory per connection is bounded by READER_HIGH_WATER + one socket read, the payloads of admitted
 * READ/WRITE requests (maxInFlightBytesPerConnection, or one request's when it alone is larger; a
 * WRITE's payload is kept as views of the socket's chunks, not copied, so it may hold up to two socket
 * reads more than its length), and WRITE_HIGH_WATER of unsent replies (plus the replies of requests
 * already in flight).
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { ByteBudget } from './nbd-admission.js';
import * as P from './nbd-protocol.js';
import { startTlsServer, type PskKeys } from './nbd-tls.js';

export interface NbdExport {
  name: string;
  sizeBytes: number;
  /** Minimum block size: a power of 2, at most 64 KiB. Requests must be aligned to it. */
  blockBytes: number;
  /** Preferred block size: a power of 2 ≥ max(blockBytes, 512); default max(4096, blockBytes). */
  preferredBlockBytes?: number;
  /** Largest READ/WRITE payload; default 32 MiB. */
  maxPayloadBytes?: number;
  readOnly?: boolean;
  description?: string;
}

export interface NbdBackend {
  exports(): NbdExport[];
  read(exp: string, offset: number, length: number): Promise<Uint8Array>;
  /** `data` is the payload as it arrived, in order: views of the socket's chunks (not copied), to be copied once, where the bytes go. */
  write(exp: string, offset: number, data: readonly Uint8Array[], fua: boolean): Promise<void>;
  /** Durable before it resolves; covers every write completed before it, on any connection. */
  flush(exp: string): Promise<void>;
  trim(exp: string, offset: number, length: number): Promise<void>;
  writeZeroes(exp: string, offset: number, length: number, fua: boolean): Promise<void>;
  /**
   * `base:allocation` of [offset, offset + length): extents in order from offset, each a multiple of
   * the block size (the last may end at the export's end), covering the range or a prefix of it;
   * state NBD_STATE_HOLE|NBD_STATE_ZERO (3) for a hole, 0 for data. Without it, all is data.
   */
  blockStatus?(exp: string, offset: number, length: number): Promise<{ lengthBytes: number; state: number }[]>;
}

export interface NbdServer {
  close(): Promise<void>;
  socketPath?: string;
  tcp?: { host: string; port: number };
  readonly counters: Record<string, number>;
}

export interface NbdServerOptions {
  backend: NbdBackend;
  socketPath?: string;
  /** Port 0 picks a free port; the server's `tcp.port` says which. */
  tcp?: { host: string; port: number };
  log?: (line: string) => void;
  /**
   * TCP connections must start TLS with one of these PSKs (NBD_OPT_STARTTLS; anything else first gets
   * NBD_REP_ERR_TLS_REQD). The Unix socket is always plain (it is 0600 in a 0700 dir).
   */
  tls?: { keys: PskKeys };
  /** Plain TCP without `tls`: refused unless this says so (`--nbd-insecure`). */
  tcpInsecure?: boolean;
  /** Open connections at most (default 64); more are told the server is full (see `accept`). */
  maxConnections?: number;
  /** Requests in flight per connection at most (default 16); beyond, the socket is not read. */
  maxInFlightPerConnection?: number;
  /** READ/WRITE payload bytes in flight per connection at most (default 64 MiB; one request always fits). */
  maxInFlightBytesPerConnection?: number;
  /** READ/WRITE payload bytes in flight across all connections at most (default 256 MiB; see nbd-admission.ts). */
  maxInFlightBytes?: number;
  /** A client must reach transmission within this time (default 10 s), else it is disconnected. */
  handshakeTimeoutMs?: number;
  /** A connection whose unsent replies make no progress this long is disconnected (default 30 s). */
  replyStallMs?: number;
}

const MiB = 1 << 20;
export const NBD_DEFAULT_MAX_PAYLOAD = 32 * MiB;
const DEFAULT_MAX_CONNECTIONS = 64;
const DEFAULT_MAX_IN_FLIGHT = 16;
const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * MiB;
/** 256 MiB = 8 maximum-size requests in flight at once: enough to keep the fabric busy, far from the host's memory. */
const DEFAULT_MAX_IN_FLIGHT_BYTES_TOTAL = 256 * MiB;
/**
 * qemu-nbd's default (handshake-max-seconds 10): a TLS handshake and option haggling take milliseconds
 * on a loaded machine, and a slot held by a client that never finishes is free again within 10 s.
 */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Long enough for a slow but live reader; a client that stops reading returns its budget within it. */
const DEFAULT_REPLY_STALL_MS = 30_000;
/**
 * Connections beyond maxConnections that are told so at most at once (greeting, then
 * NBD_REP_ERR_POLICY "server full" to every option); beyond this they are closed at once. Each is
 * given REFUSAL_TIMEOUT_MS to read its refusal.
 */
const MAX_REFUSING = 16;
const REFUSAL_TIMEOUT_MS = 2_000;
/** Option data larger than this gets NBD_REP_ERR_TOO_BIG and a closed connection. */
export const MAX_OPTION_BYTES = 64 * 1024;
/** Options per connection at most (a client haggling forever is disconnected). */
const MAX_OPTIONS = 1024;
/** Received bytes buffered ahead of the parser at most (plus one socket read) before the socket is paused. */
const READER_HIGH_WATER = 256 * 1024;
/** Unsent reply bytes above which no further request is read. */
const WRITE_HIGH_WATER = 8 * MiB;
/** How long a closing connection waits for its in-flight backend calls when the server shuts down. */
const SHUTDOWN_GRACE_MS = 5_000;

/** The connection ended (EOF, reset, or shut down by us): the parser stops. */
class Hangup extends Error {}

/**
 * Incremental reader over a socket: `read(n)` resolves with exactly n bytes. It buffers at most
 * max(READER_HIGH_WATER, the pending read) plus one chunk, pausing the socket beyond that.
 */
class StreamReader {
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private need = 0;
  private waiter: (() => void) | null = null;
  private ended: Hangup | null = null;

  private readonly onData = (d: Buffer): void => {
    if (this.ended) return;
    this.chunks.push(d);
    this.buffered += d.length;
    if (this.buffered >= Math.max(READER_HIGH_WATER, this.need)) this.sock.pause();
    this.wake();
  };
  private readonly onEnd = (): void => this.end('end of stream');
  private readonly onClose = (): void => this.end('connection closed');

  constructor(private readonly sock: net.Socket) {
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('close', this.onClose);
  }

  /**
   * Stops reading and lets go of the socket (STARTTLS hands it to TLS): returns how many bytes were
   * received but not read (after STARTTLS, any is a client that did not wait for the ACK).
   */
  detach(): number {
    this.sock.pause();
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onEnd);
    this.sock.off('close', this.onClose);
    const left = this.buffered;
    this.end('detached');
    return left;
  }

  /** No more reads: a pending one rejects, and so will later ones. */
  end(why: string): void {
    if (!this.ended) this.ended = new Hangup(why);
    this.chunks = [];
    this.buffered = 0;
    this.head = 0;
    this.sock.pause();
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private async fill(n: number): Promise<void> {
    this.need = n;
    try {
      while (this.buffered < n) {
        if (this.ended) throw this.ended;
        this.sock.resume();
        await new Promise<void>((r) => (this.waiter = r));
      }
    } finally {
      this.need = 0;
    }
  }

  async read(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    await this.fill(n);
    return this.take(n);
  }

  /** Exactly n bytes as views of the received chunks, in order: no copy (a WRITE payload goes to the backend so). */
  async readParts(n: number): Promise<Buffer[]> {
    if (n === 0) return [];
    await this.fill(n);
    const out: Buffer[] = [];
    for (let left = n; left > 0; ) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.head, left);
      out.push(this.take(k));
      left -= k;
    }
    return out;
  }

  /** Discards n bytes as they arrive (nothing accumulates). */
  async skip(n: number): Promise<void> {
    while (n > 0) {
      await this.fill(1);
      const k = Math.min(n, this.buffered);
      this.take(k);
      n -= k;
    }
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    } else {
      out = Buffer.allocUnsafe(n);
      let pos = 0;
      while (pos < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length - this.head, n - pos);
        out.set(c.subarray(this.head, this.head + k), pos);
        pos += k;
        this.head += k;
        if (this.head === c.length) {
          this.chunks.shift();
          this.head = 0;
        }
      }
    }
    this.buffered -= n;
    return out;
  }
}

/** An export with its size constraints resolved and checked. */
interface Export {
  name: string;
  sizeBytes: number;
  min: number;
  preferred: number;
  maxPayload: number;
  readOnly: boolean;
  description: string | undefined;
}

const isPow2 = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;

/** Resolves an export's constraints; throws naming what is wrong (proto.md "Size constraints"). */
export function resolveExport(e: NbdExport): Export {
  const min = e.blockBytes;
  if (!isPow2(min) || min > 65536) throw new Error(`NBD export '${e.name}': blockBytes ${min} is not a power of 2 at most 64 KiB`);
  const preferred = e.preferredBlockBytes ?? Math.max(4096, min);
  if (!isPow2(preferred) || preferred < Math.max(min, 512)) throw new Error(`NBD export '${e.name}': preferredBlockBytes ${preferred} is not a power of 2 at least max(blockBytes, 512)`);
  const maxPayload = e.maxPayloadBytes ?? NBD_DEFAULT_MAX_PAYLOAD;
  if (!Number.isSafeInteger(maxPayload) || maxPayload < preferred || maxPayload > 0xffff_ffff) throw new Error(`NBD export '${e.name}': maxPayloadBytes ${maxPayload} must be an integer from the preferred block size to 2^32-1`);
  if (!Number.isSafeInteger(e.sizeBytes) || e.sizeBytes < 0) throw new Error(`NBD export '${e.name}': sizeBytes ${e.sizeBytes} is not a size`);
  const nameBytes = Buffer.byteLength(e.name, 'utf8');
  if (nameBytes > P.MAX_STRING_BYTES || e.name.includes('\0')) throw new Error(`NBD export '${e.name}': names are at most 4096 bytes of UTF-8 without NUL`);
  return { name: e.name, sizeBytes: e.sizeBytes, min, preferred, maxPayload, readOnly: e.readOnly === true, description: e.description };
}

interface Request {
  flags: number;
  type: number;
  cookie: Buffer;
  offset: bigint;
  length: number;
}

/** A backend error's NBD errno (the contract in the file comment). */
function errnoOf(e: unknown): number {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  switch (code) {
    case 'OUT_OF_RANGE':
    case 'UNALIGNED':
      return P.NBD_EINVAL;
    case 'DEVICE_ERROR':
      return P.NBD_EIO;
    case 'NOSPC':
      return P.NBD_ENOSPC;
    default:
      return P.NBD_EIO;
  }
}

/** A Uint8Array over the same bytes (Node's Buffer type and TypeScript's Uint8Array disagree about ArrayBufferLike). */
const view = (b: P.Bytes): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** A copy of bytes [from, to) of `b` that keeps no reference to the socket's chunk. */
function copyOf(b: Buffer, from: number, to: number): Buffer {
  const out = Buffer.alloc(to - from);
  out.set(b.subarray(from, to));
  return out;
}

/** Extents per BLOCK_STATUS reply at most (a longer answer is cut: the reply may cover a prefix). */
const MAX_EXTENTS = 1024;

/** The backend's extents, checked against the contract in `NbdBackend.blockStatus` (a broken answer is the backend's error: EIO). */
function checkedExtents(extents: { lengthBytes: number; state: number }[], offset: number, length: number, e: Export): { lengthBytes: number; state: number }[] {
  const out = extents.slice(0, MAX_EXTENTS);
  let pos = offset;
  for (const x of out) {
    const ok = Number.isSafeInteger(x.lengthBytes) && x.lengthBytes > 0 && Number.isInteger(x.state) && x.state >= 0 && x.state <= 0xffff_ffff && pos + x.lengthBytes <= offset + length && ((pos + x.lengthBytes) % e.min === 0 || pos + x.lengthBytes === e.sizeBytes);
    if (!ok) throw new Error(`backend.blockStatus gave a bad extent ${JSON.stringify(x)} at ${pos} for [${offset}, ${offset + length})`);
    pos += x.lengthBytes;
  }
  if (out.length === 0) throw new Error(`backend.blockStatus gave no extent for [${offset}, ${offset + length})`);
  return out;
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

class Server {
  readonly counters: Record<string, number> = {
    connections: 0,
    connectionsOpen: 0,
    connectionsRefused: 0,
    connectionsToldFull: 0,
    tlsHandshakes: 0,
    tlsFailed: 0,
    tlsRequiredRefusals: 0,
    replyStalls: 0,
    budgetWaits: 0,
    inFlightBytesHighWater: 0,
    handshakesCompleted: 0,
    handshakesFailed: 0,
    badMagic: 0,
    protocolErrors: 0,
    'requests.read': 0,
    'requests.write': 0,
    'requests.flush': 0,
    'requests.trim': 0,
    'requests.writeZeroes': 0,
    'requests.cache': 0,
    'requests.blockStatus': 0,
    'requests.disc': 0,
    'requests.unknown': 0,
    'errors.EINVAL': 0,
    'errors.EIO': 0,
    'errors.ENOSPC': 0,
    'errors.EPERM': 0,
    bytesRead: 0,
    bytesWritten: 0,
    bytesZeroed: 0,
    bytesTrimmed: 0,
    payloadBytesDiscarded: 0,
    repliesDropped: 0,
    inFlightHighWater: 0,
  };
  /** Open connections, each with the promise of its end. */
  readonly conns = new Map<Connection, Promise<void>>();
  /** Connections beyond maxConnections being told the server is full (at most MAX_REFUSING). */
  readonly refusing = new Map<Connection, Promise<void>>();
  private nextId = 1;
  closing = false;
  readonly maxConnections: number;
  readonly maxInFlight: number;
  readonly maxInFlightBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly replyStallMs: number;
  /** READ/WRITE payload bytes in flight on all connections (nbd-admission.ts). */
  readonly budget: ByteBudget;

  constructor(readonly o: NbdServerOptions) {
    this.maxConnections = positive(o.maxConnections, DEFAULT_MAX_CONNECTIONS, 'maxConnections');
    this.maxInFlight = positive(o.maxInFlightPerConnection, DEFAULT_MAX_IN_FLIGHT, 'maxInFlightPerConnection');
    this.maxInFlightBytes = positive(o.maxInFlightBytesPerConnection, DEFAULT_MAX_IN_FLIGHT_BYTES, 'maxInFlightBytesPerConnection');
    this.handshakeTimeoutMs = positive(o.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS, 'handshakeTimeoutMs');
    this.replyStallMs = positive(o.replyStallMs, DEFAULT_REPLY_STALL_MS, 'replyStallMs');
    this.budget = new ByteBudget(positive(o.maxInFlightBytes, DEFAULT_MAX_IN_FLIGHT_BYTES_TOTAL, 'maxInFlightBytes'));
  }

  /** The budget's measures into `counters` (after every take). */
  syncBudgetCounters(): void {
    this.counters.inFlightBytesHighWater = this.budget.highWaterBytes;
    this.counters.budgetWaits = this.budget.waits;
  }

  count(key: string, by = 1): void {
    this.counters[key] = (this.counters[key] ?? 0) + by;
  }

  log(line: string): void {
    this.o.log?.(`nbd: ${line}`);
  }

  /** The export named `name` ('' = the first), or null (also when the backend's description of it is invalid). */
  lookup(name: string): Export | null {
    let list: NbdExport[];
    try {
      list = this.o.backend.exports();
    } catch (e) {
      this.log(`backend.exports() failed: ${messageOf(e)}`);
      return null;
    }
    const e = name === '' ? list[0] : list.find((x) => x.name === name);
    if (!e) return null;
    try {
      return resolveExport(e);
    } catch (err) {
      this.log(messageOf(err));
      return null;
    }
  }

  listExports(): Export[] {
    const out: Export[] = [];
    for (const e of this.o.backend.exports()) {
      try {
        out.push(resolveExport(e));
      } catch (err) {
        this.log(messageOf(err));
      }
    }
    return out;
  }

  /**
   * A connection beyond maxConnections is told why, the only way NBD lets a server say so: it gets the
   * greeting, and every option but ABORT gets NBD_REP_ERR_POLICY with the message "server full" (libnbd
   * and qemu print it); EXPORT_NAME, which has no error reply, gets a closed connection. At most
   * MAX_REFUSING are told at once, for REFUSAL_TIMEOUT_MS each; more are closed at once.
   */
  accept(sock: net.Socket, where: string): void {
    this.count('connections');
    const tls = where === 'tcp' && this.o.tls ? this.o.tls.keys : null;
    let full: string | null = null;
    if (!this.closing && this.conns.size >= this.maxConnections) full = `server full: ${this.conns.size} NBD connections open, the most it serves (maxConnections); try again later`;
    if (this.closing || (full !== null && this.refusing.size >= MAX_REFUSING)) {
      this.count('connectionsRefused');
      this.log(`refused a connection on ${where}: ${this.closing ? 'shutting down' : `${this.conns.size} open (maxConnections) and ${this.refusing.size} being told so`}`);
      sock.destroy();
      return;
    }
    if (full !== null) {
      this.count('connectionsToldFull');
      this.log(`connection on ${where}: ${full}`);
    }
    const set = full === null ? this.conns : this.refusing;
    const c = new Connection(this, sock, this.nextId++, where, tls, full);
    const done = c
      .run()
      .catch((e) => {
        this.log(`connection ${where}: ${messageOf(e)}`);
        c.destroy();
      })
      .finally(() => {
        set.delete(c);
        this.counters.connectionsOpen = this.conns.size;
      });
    set.set(c, done);
    this.counters.connectionsOpen = this.conns.size;
  }
}

function positive(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`startNbdServer: ${what} must be a positive integer, not ${v}`);
  return v;
}

class Connection {
  /** The socket spoken on: the accepted one, then its TLS socket after STARTTLS. */
  private sock: net.Socket;
  private reader: StreamReader;
  private readonly closed: Promise<void>;
  private markClosed!: () => void;
  /** Whether this connection is inside TLS (then STARTTLS again is invalid). */
  private secure = false;
  /** Aborted when the connection ends: a request waiting for the shared budget stops waiting. */
  private readonly ended = new AbortController();
  private noZeroes = false;
  private structured = false;
  /** The export SET_META_CONTEXT selected base:allocation for, if any. */
  private metaExport: string | null = null;
  private metaActive = false;
  private exp: Export | null = null;
  private eflags = 0;
  private readonly inFlight = new Set<Promise<void>>();
  /** READ/WRITE payload bytes of this connection's requests not yet answered on the wire. */
  private inFlightBytes = 0;
  /** Releases of those bytes (dispatch); whatever is left when the connection closes is released then. */
  private readonly holds = new Set<() => void>();
  private waiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(
    private readonly srv: Server,
    sock: net.Socket,
    private readonly id: number,
    private readonly where: string,
    /** TLS is required with these keys (TCP with `tls`), or null (plain). */
    private readonly tlsKeys: PskKeys | null,
    /** Why the server is full, if it is: this connection is only told so (Server.accept). */
    private readonly full: string | null,
  ) {
    this.sock = sock;
    this.reader = new StreamReader(sock);
    this.closed = new Promise((r) => (this.markClosed = r));
    this.watch(sock);
    if (typeof sock.setNoDelay === 'function') sock.setNoDelay(true);
  }

  /** Listens to a socket this connection speaks on (the TLS socket too: the raw one goes quiet under it). */
  private watch(sock: net.Socket): void {
    sock.on('error', (e: NodeJS.ErrnoException) => this.log(e.code === 'EPIPE' || e.code === 'ECONNRESET' ? `client gone (${e.code})` : `socket error: ${e.message}`));
    sock.on('drain', () => this.signal());
    sock.once('close', () => {
      this.ended.abort(new Hangup('connection closed'));
      this.signal();
      this.markClosed();
    });
  }

  destroy(): void {
    this.sock.destroy();
  }

  private log(line: string): void {
    this.srv.log(`[${this.id} ${this.where}] ${line}`);
  }

  /** Server shutdown: read no more; in-flight requests get SHUTDOWN_GRACE_MS to finish. */
  shutdown(): void {
    this.shuttingDown = true;
    this.reader.end('server shutting down');
    this.ended.abort(new Hangup('server shutting down'));
    this.signal();
  }

  async run(): Promise<void> {
    const deadlineMs = this.full !== null ? REFUSAL_TIMEOUT_MS : this.srv.handshakeTimeoutMs;
    const timer = setTimeout(() => {
      this.log(`no transmission after ${deadlineMs} ms: disconnecting`);
      if (this.full === null) this.srv.count('handshakesFailed');
      this.sock.destroy();
    }, deadlineMs);
    timer.unref();
    try {
      const go = await this.handshake();
      clearTimeout(timer);
      if (go) {
        this.srv.count('handshakesCompleted');
        this.watchStalls();
        await this.transmission();
      }
    } catch (e) {
      if (!(e instanceof Hangup)) {
        this.log(`internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        this.sock.destroy();
      }
    } finally {
      clearTimeout(timer);
      this.reader.end('done');
      // Let in-flight backend calls settle (their replies go out if the socket still can take them).
      const settled = Promise.allSettled([...this.inFlight]);
      if (this.shuttingDown) await Promise.race([settled, delay(SHUTDOWN_GRACE_MS)]);
      else await settled;
      if (!this.sock.destroyed && !this.sock.writableEnded) this.sock.end();
      const t = setTimeout(() => this.sock.destroy(), this.shuttingDown ? 200 : 5_000);
      t.unref();
      await this.closed;
      clearTimeout(t);
      for (const release of [...this.holds]) release();
    }
  }

  /**
   * Idle connections may stay (as in nbdkit); a client that stops reading its replies may not: with
   * unsent replies and no socket activity for replyStallMs, it is disconnected (its budget returns).
   */
  private watchStalls(): void {
    const ms = this.srv.replyStallMs;
    this.sock.setTimeout(ms, () => {
      if (this.sock.writableLength === 0) return; // idle, or the backend is slow: not the client's doing
      this.srv.count('replyStalls');
      this.log(`${this.sock.writableLength} reply bytes unread for ${ms} ms: disconnecting`);
      this.sock.destroy();
    });
  }

  /**
   * Writes one message whole (its parts back to back in one tick, so never interleaved with another's).
   * A reply that cannot be delivered (connection gone now, or its write fails) is counted as dropped.
   */
  private send(parts: P.Bytes[], isReply = false, written?: () => void): void {
    if (this.sock.destroyed || this.sock.writableEnded) {
      if (isReply) this.srv.count('repliesDropped');
      written?.();
      return;
    }
    if (isReply) this.corkForTurn();
    if (parts.length > 1) this.sock.cork();
    parts.forEach((p, i) => {
      if (isReply && i === parts.length - 1)
        this.sock.write(view(p), (err) => {
          if (err) this.srv.count('repliesDropped');
          written?.();
        });
      else this.sock.write(view(p));
    });
    if (parts.length > 1) this.sock.uncork();
  }

  /**
   * Replies finished in one turn of the event loop leave together, in one write at its end: the
   * model completes commands in batches (a turn's events), and a socket call per reply, each waking
   * the client, cost more than the replies' bytes.
   */
  private corkedForTurn = false;
  private corkForTurn(): void {
    if (this.corkedForTurn) return;
    this.corkedForTurn = true;
    this.sock.cork();
    setImmediate(() => {
      this.corkedForTurn = false;
      this.sock.uncork();
    });
  }

  /** A hard disconnect after a protocol violation. */
  private violation(what: string): void {
    this.srv.count('protocolErrors');
    this.log(`${what}: closing the connection`);
    this.sock.destroy();
  }

  private signal(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async waitUntil(cond: () => boolean): Promise<void> {
    while (!cond()) {
      if (this.sock.destroyed || this.shuttingDown) throw new Hangup('connection closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  // ---- Handshake -------------------------------------------------------------------------------

  /** True when transmission starts; false when the session ended during haggling. */
  private async handshake(): Promise<boolean> {
    this.send([P.encodeGreeting()]);
    const clientFlags = (await this.reader.read(4)).readUInt32BE(0);
    if ((clientFlags & ~(P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES)) !== 0) {
      this.srv.count('handshakesFailed');
      this.violation(`unknown client flags 0x${clientFlags.toString(16)}`);
      return false;
    }
    this.noZeroes = (clientFlags & P.NBD_FLAG_C_NO_ZEROES) !== 0;
    for (let n = 0; ; n++) {
      const h = await this.reader.read(16);
      if (h.readBigUInt64BE(0) !== P.IHAVEOPT) {
        this.srv.count('badMagic');
        this.srv.count('handshakesFailed');
        this.violation('bad option magic');
        return false;
      }
      const opt = h.readUInt32BE(8);
      const len = h.readUInt32BE(12);
      this.srv.count(`options.${P.OPTION_NAMES[opt] ?? 'unknown'}`);
      if (n >= MAX_OPTIONS) {
        this.srv.count('handshakesFailed');
        this.violation(`more than ${MAX_OPTIONS} options`);
        return false;
      }
      if (len > MAX_OPTION_BYTES) {
        if (opt !== P.NBD_OPT_EXPORT_NAME) this.send([P.encodeOptionError(opt, P.NBD_REP_ERR_TOO_BIG, `option data of ${len} bytes (at most ${MAX_OPTION_BYTES})`)]);
        this.srv.count('handshakesFailed');
        this.srv.count('protocolErrors');
        this.log(`option ${opt} with ${len} bytes of data: closing the connection`);
        this.sock.end();
        return false;
      }
      const data = await this.reader.read(len);
      const next = this.gate(opt) ?? (opt === P.NBD_OPT_STARTTLS && this.tlsKeys ? await this.startTls(data, this.tlsKeys) : this.option(opt, data));
      if (next === 'transmission') return true;
      if (next === 'end') return false;
    }
  }

  /**
   * What a full server, or one that requires TLS not yet started, answers to `opt`; null when the option
   * goes on as usual. ABORT is always honoured; EXPORT_NAME, which has no error reply, gets a close.
   */
  private gate(opt: number): 'continue' | 'end' | null {
    if (opt === P.NBD_OPT_ABORT) return null;
    const refuse = (type: number, why: string, counter: string): 'continue' | 'end' => {
      this.srv.count(counter);
      if (opt === P.NBD_OPT_EXPORT_NAME) {
        this.log(`EXPORT_NAME: ${why}: closing (the option has no error reply)`);
        this.sock.destroy();
        return 'end';
      }
      this.error(opt, type, why);
      return 'continue';
    };
    if (this.full !== null) return refuse(P.NBD_REP_ERR_POLICY, this.full, 'optionsRefusedFull');
    if (this.tlsKeys && !this.secure && opt !== P.NBD_OPT_STARTTLS) return refuse(P.NBD_REP_ERR_TLS_REQD, 'TLS is required on this TCP port: use NBD_OPT_STARTTLS with the PSK file (nbds://...?tls-psk-file=...)', 'tlsRequiredRefusals');
    return null;
  }

  /**
   * NBD_OPT_STARTTLS: ACK, then the TLS handshake on the same socket; the options that follow are read
   * inside TLS. A failed handshake (unknown identity, wrong key) ends the connection.
   */
  private async startTls(data: Buffer, keys: PskKeys): Promise<'continue' | 'end'> {
    if (this.secure) {
      this.error(P.NBD_OPT_STARTTLS, P.NBD_REP_ERR_INVALID, 'TLS is already started');
      return 'continue';
    }
    if (data.length !== 0) {
      this.error(P.NBD_OPT_STARTTLS, P.NBD_REP_ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
      return 'continue';
    }
    const raw = this.sock;
    // The ACK must be on the wire before TLS takes the socket over.
    await new Promise<void>((resolve, reject) => raw.write(view(P.encodeOptionReply(P.NBD_OPT_STARTTLS, P.NBD_REP_ACK)), (e) => (e ? reject(new Hangup(e.message)) : resolve())));
    if (this.reader.detach() > 0) {
      this.srv.count('tlsFailed');
      this.violation('bytes after NBD_OPT_STARTTLS before its ACK');
      return 'end';
    }
    try {
      const t = await startTlsServer(raw, keys, (id, known) => this.log(`TLS identity '${id}'${known ? '' : ' is not in the PSK file'}`));
      this.sock = t;
      this.reader = new StreamReader(t);
      this.watch(t);
      this.secure = true;
      this.srv.count('tlsHandshakes');
      this.log(`TLS started (${t.getProtocol()}, ${t.getCipher().name})`);
      return 'continue';
    } catch (e) {
      this.srv.count('tlsFailed');
      this.srv.count('handshakesFailed');
      this.log(`TLS handshake failed: ${messageOf(e)}`);
      raw.destroy();
      return 'end';
    }
  }

  private reply(opt: number, type: number, data?: P.Bytes): void {
    this.send([P.encodeOptionReply(opt, type, data)]);
  }

  private error(opt: number, type: number, message: string): void {
    this.send([P.encodeOptionError(opt, type, message)]);
  }

  private transmissionFlags(e: Export): number {
    let f = P.NBD_FLAG_HAS_FLAGS | P.NBD_FLAG_SEND_FLUSH | P.NBD_FLAG_CAN_MULTI_CONN | P.NBD_FLAG_SEND_CACHE;
    if (e.readOnly) f |= P.NBD_FLAG_READ_ONLY;
    else f |= P.NBD_FLAG_SEND_FUA | P.NBD_FLAG_SEND_TRIM | P.NBD_FLAG_SEND_WRITE_ZEROES;
    if (this.structured) f |= P.NBD_FLAG_SEND_DF;
    return f;
  }

  private option(opt: number, data: Buffer): 'continue' | 'transmission' | 'end' {
    switch (opt) {
      case P.NBD_OPT_EXPORT_NAME: {
        const name = data.toString('utf8');
        const e = this.srv.lookup(name);
        if (!e) {
          this.srv.count('handshakesFailed');
          this.log(`EXPORT_NAME '${name}': no such export, closing (the option has no error reply)`);
          this.sock.destroy();
          return 'end';
        }
        this.enter(e);
        this.send([P.encodeExportNameReply(e.sizeBytes, this.eflags, this.noZeroes)]);
        return 'transmission';
      }
      case P.NBD_OPT_ABORT:
        this.reply(opt, P.NBD_REP_ACK);
        this.sock.end();
        return 'end';
      case P.NBD_OPT_LIST: {
        if (data.length !== 0) {
          this.error(opt, P.NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
          return 'continue';
        }
        let list: Export[];
        try {
          list = this.srv.listExports();
        } catch (e) {
          this.error(opt, P.NBD_REP_ERR_SHUTDOWN, `cannot list exports: ${messageOf(e)}`);
          return 'continue';
        }
        for (const e of list) this.reply(opt, P.NBD_REP_SERVER, P.encodeServerEntry(e.name, e.description));
        this.reply(opt, P.NBD_REP_ACK);
        return 'continue';
      }
      case P.NBD_OPT_INFO:
      case P.NBD_OPT_GO:
        return this.infoOrGo(opt, data);
      case P.NBD_OPT_STRUCTURED_REPLY:
        if (data.length !== 0) {
          this.error(opt, P.NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          return 'continue';
        }
        this.structured = true;
        this.reply(opt, P.NBD_REP_ACK);
        return 'continue';
      case P.NBD_OPT_LIST_META_CONTEXT:
      case P.NBD_OPT_SET_META_CONTEXT:
        this.metaContext(opt, data);
        return 'continue';
      default:
        this.error(opt, P.NBD_REP_ERR_UNSUP, `option ${opt} is not supported`);
        return 'continue';
    }
  }

  /** NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, count × u16 information requests. */
  private infoOrGo(opt: number, data: Buffer): 'continue' | 'transmission' {
    const what = opt === P.NBD_OPT_GO ? 'NBD_OPT_GO' : 'NBD_OPT_INFO';
    if (data.length < 6) {
      this.error(opt, P.NBD_REP_ERR_INVALID, `${what}: ${data.length} bytes of data is too short`);
      return 'continue';
    }
    const nameLen = data.readUInt32BE(0);
    if (nameLen > data.length - 6) {
      this.error(opt, P.NBD_REP_ERR_INVALID, `${what}: name length ${nameLen} does not fit in ${data.length} bytes`);
      return 'continue';
    }
    const name = data.subarray(4, 4 + nameLen).toString('utf8');
    const n = data.readUInt16BE(4 + nameLen);
    if (data.length !== 6 + nameLen + 2 * n) {
      this.error(opt, P.NBD_REP_ERR_INVALID, `${what}: ${n} information requests do not match the option length ${data.length}`);
      return 'continue';
    }
    const asked = new Set<number>();
    for (let i = 0; i < n; i++) asked.add(data.readUInt16BE(4 + nameLen + 2 + 2 * i));
    const e = this.srv.lookup(name);
    if (!e) {
      this.error(opt, P.NBD_REP_ERR_UNKNOWN, `no export '${name}'`);
      return 'continue';
    }
    this.reply(opt, P.NBD_REP_INFO, P.encodeInfoExport(e.sizeBytes, this.transmissionFlags(e)));
    // Always sent: the server enforces its minimum block size (proto.md: MUST when asked, MAY otherwise).
    this.reply(opt, P.NBD_REP_INFO, P.encodeInfoBlockSize(e.min, e.preferred, e.maxPayload));
    if (asked.has(P.NBD_INFO_NAME)) this.reply(opt, P.NBD_REP_INFO, P.encodeInfoString(P.NBD_INFO_NAME, e.name));
    if (asked.has(P.NBD_INFO_DESCRIPTION) && e.description !== undefined) this.reply(opt, P.NBD_REP_INFO, P.encodeInfoString(P.NBD_INFO_DESCRIPTION, e.description));
    this.reply(opt, P.NBD_REP_ACK);
    if (opt !== P.NBD_OPT_GO) return 'continue';
    this.enter(e);
    return 'transmission';
  }

  private enter(e: Export): void {
    this.exp = e;
    this.eflags = this.transmissionFlags(e);
    this.metaActive = this.structured && this.metaExport === e.name;
    this.log(`transmission on '${e.name}' (${e.sizeBytes} bytes, block ${e.min}, flags 0x${this.eflags.toString(16)}${this.structured ? ', structured replies' : ''})`);
  }

  /**
   * NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: u32 name length, name, u32 query count,
   * queries (u32 length, string). Only `base:allocation` exists (holes from backend.blockStatus).
   */
  private metaContext(opt: number, data: Buffer): void {
    const set = opt === P.NBD_OPT_SET_META_CONTEXT;
    if (set) this.metaExport = null; // a SET replaces the selection, even when it fails
    const bad = (why: string): void => this.error(opt, P.NBD_REP_ERR_INVALID, why);
    if (set && !this.structured) return bad('NBD_OPT_SET_META_CONTEXT needs NBD_OPT_STRUCTURED_REPLY first');
    if (data.length < 8) return bad('meta context option too short');
    const nameLen = data.readUInt32BE(0);
    if (nameLen > data.length - 8) return bad(`export name length ${nameLen} does not fit`);
    const name = data.subarray(4, 4 + nameLen).toString('utf8');
    const count = data.readUInt32BE(4 + nameLen);
    const queries: string[] = [];
    let pos = 8 + nameLen;
    for (let i = 0; i < count; i++) {
      if (pos + 4 > data.length) return bad('query count beyond the option data');
      const ql = data.readUInt32BE(pos);
      if (ql > data.length - pos - 4) return bad('query length beyond the option data');
      queries.push(data.subarray(pos + 4, pos + 4 + ql).toString('utf8'));
      pos += 4 + ql;
    }
    if (pos !== data.length) return bad('trailing bytes after the queries');
    const e = this.srv.lookup(name);
    if (!e) return this.error(opt, P.NBD_REP_ERR_UNKNOWN, `no export '${name}'`);
    const match = set ? queries.includes(P.BASE_ALLOCATION) : queries.length === 0 || queries.some((q) => q === 'base:' || q === P.BASE_ALLOCATION);
    if (match) this.reply(opt, P.NBD_REP_META_CONTEXT, P.encodeMetaContext(set ? P.BASE_ALLOCATION_ID : 0, P.BASE_ALLOCATION));
    if (set && match) this.metaExport = e.name;
    this.reply(opt, P.NBD_REP_ACK);
  }

  // ---- Transmission ----------------------------------------------------------------------------

  private async transmission(): Promise<void> {
    const exp = this.exp!;
    const discardLimit = 2 * Math.max(exp.maxPayload, NBD_DEFAULT_MAX_PAYLOAD);
    for (;;) {
      let h: Buffer;
      try {
        await this.waitUntil(() => this.inFlight.size < this.srv.maxInFlight && this.sock.writableLength <= WRITE_HIGH_WATER);
        h = await this.reader.read(P.REQUEST_HEADER_BYTES);
      } catch (e) {
        if (e instanceof Hangup) return; // EOF or reset: answer what is in flight (run's finally)
        throw e;
      }
      if (h.readUInt32BE(0) !== P.NBD_REQUEST_MAGIC) {
        this.srv.count('badMagic');
        this.violation(`bad request magic 0x${h.readUInt32BE(0).toString(16)}`);
        return;
      }
      const req: Request = { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: copyOf(h, 8, 16), offset: h.readBigUInt64BE(16), length: h.readUInt32BE(24) };
      this.srv.count(`requests.${P.COMMAND_NAMES[req.type] ?? 'unknown'}`);
      if (req.type === P.NBD_CMD_DISC) {
        this.log('NBD_CMD_DISC: finishing in-flight requests, then closing');
        return;
      }
      if (P.COMMAND_NAMES[req.type] === undefined && (req.flags & P.NBD_CMD_FLAG_PAYLOAD_LEN) !== 0) {
        this.violation(`unknown command ${req.type} with a payload of unknown length`);
        return;
      }
      const invalid = this.validate(req, exp);
      let payload: Buffer[] | null = null;
      try {
        if (req.type === P.NBD_CMD_WRITE && invalid) {
          // The payload must still be consumed to stay in step: skipped as it arrives, never buffered.
          if (req.length > discardLimit) {
            this.violation(`write of ${req.length} bytes (more than ${discardLimit} to discard)`);
            return;
          }
          await this.reader.skip(req.length);
          this.srv.count('payloadBytesDiscarded', req.length);
        } else if (!invalid && (req.type === P.NBD_CMD_WRITE || req.type === P.NBD_CMD_READ)) {
          await this.waitUntil(() => this.inFlightBytes === 0 || this.inFlightBytes + req.length <= this.srv.maxInFlightBytes);
          // Then the server-wide budget (held until the reply is written: dispatch), before any payload is read.
          await this.srv.budget.take(req.length, this.ended.signal);
          this.srv.syncBudgetCounters();
          if (req.type === P.NBD_CMD_WRITE) {
            try {
              payload = await this.reader.readParts(req.length);
            } catch (e) {
              this.srv.budget.give(req.length);
              throw e;
            }
          }
        }
      } catch (e) {
        if (e instanceof Hangup) return; // gone in the middle of a payload: nothing reaches the backend
        throw e;
      }
      if (invalid) {
        this.sendError(req, invalid[0], invalid[1]);
        continue;
      }
      this.dispatch(req, exp, payload);
    }
  }

  /** Why a request must be refused, as [errno, message], or null (checks in nbdkit's order). */
  private validate(r: Request, e: Export): [number, string] | null {
    const { type, flags, offset, length } = r;
    const name = P.COMMAND_NAMES[type];
    if (name === undefined) return [P.NBD_EINVAL, `unknown command ${type}`];
    const writes = type === P.NBD_CMD_WRITE || type === P.NBD_CMD_TRIM || type === P.NBD_CMD_WRITE_ZEROES;
    if (writes && e.readOnly) return [P.NBD_EPERM, `${name} on a read-only export`];
    if (type === P.NBD_CMD_FLUSH) {
      if (offset !== 0n || length !== 0) return [P.NBD_EINVAL, 'flush with a nonzero offset or length'];
    } else if (offset + BigInt(length) > BigInt(e.sizeBytes)) {
      const err = type === P.NBD_CMD_WRITE || type === P.NBD_CMD_WRITE_ZEROES ? P.NBD_ENOSPC : P.NBD_EINVAL;
      return [err, `${name} of ${length} bytes at ${offset} is beyond the export's ${e.sizeBytes} bytes`];
    }
    const known = P.NBD_CMD_FLAG_FUA | P.NBD_CMD_FLAG_NO_HOLE | P.NBD_CMD_FLAG_DF | P.NBD_CMD_FLAG_REQ_ONE;
    if ((flags & ~known) !== 0) return [P.NBD_EINVAL, `unknown or unsupported command flags 0x${flags.toString(16)}`];
    if (flags & P.NBD_CMD_FLAG_NO_HOLE && type !== P.NBD_CMD_WRITE_ZEROES) return [P.NBD_EINVAL, 'NO_HOLE needs WRITE_ZEROES'];
    if (flags & P.NBD_CMD_FLAG_DF && (type !== P.NBD_CMD_READ || !this.structured)) return [P.NBD_EINVAL, 'DF needs a READ with structured replies'];
    if (flags & P.NBD_CMD_FLAG_REQ_ONE && type !== P.NBD_CMD_BLOCK_STATUS) return [P.NBD_EINVAL, 'REQ_ONE needs BLOCK_STATUS'];
    if (flags & P.NBD_CMD_FLAG_FUA && !(this.eflags & P.NBD_FLAG_SEND_FUA)) return [P.NBD_EINVAL, 'FUA was not advertised'];
    if (type === P.NBD_CMD_FLUSH) return null;
    const off = Number(offset); // in range, so safe
    if (off % e.min !== 0 || length % e.min !== 0) return [P.NBD_EINVAL, `${name} of ${length} bytes at ${off} is not aligned to the ${e.min}-byte block`];
    if ((type === P.NBD_CMD_READ || type === P.NBD_CMD_WRITE) && length > e.maxPayload) return [P.NBD_EINVAL, `${name} of ${length} bytes exceeds the maximum payload of ${e.maxPayload}`];
    if (type === P.NBD_CMD_BLOCK_STATUS) {
      if (!this.metaActive) return [P.NBD_EINVAL, 'BLOCK_STATUS without a base:allocation context'];
      if (length === 0) return [P.NBD_EINVAL, 'BLOCK_STATUS of length 0'];
    }
    return null;
  }

  private errorParts(r: Request, errno: number, message: string): Buffer[] {
    this.srv.count(`errors.${P.ERRNO_NAMES[errno] ?? errno}`);
    return [this.structured ? P.encodeErrorChunk(r.cookie, errno, message) : P.encodeSimpleReply(errno, r.cookie)];
  }

  private sendError(r: Request, errno: number, message: string): void {
    this.log(`${P.COMMAND_NAMES[r.type] ?? `command ${r.type}`}: ${P.ERRNO_NAMES[errno] ?? errno}: ${message}`);
    this.send(this.errorParts(r, errno, message), true);
  }

  /**
   * Runs a valid request; in flight (counted, and awaited by a later FLUSH) until its reply is sent. A
   * READ/WRITE's payload bytes (taken from the budget by the caller) are held until the kernel has its
   * reply (the write callback), or the connection is gone (`holds`, released in `run`).
   */
  private dispatch(r: Request, e: Export, payload: Buffer[] | null): void {
    const bytes = r.type === P.NBD_CMD_READ || r.type === P.NBD_CMD_WRITE ? r.length : 0;
    const before = r.type === P.NBD_CMD_FLUSH ? [...this.inFlight] : [];
    this.inFlightBytes += bytes;
    const release = (): void => {
      if (!this.holds.delete(release)) return;
      this.inFlightBytes -= bytes;
      this.srv.budget.give(bytes);
      this.signal();
    };
    if (bytes > 0) this.holds.add(release);
    const p: Promise<void> = this.execute(r, e, payload, before)
      .then((parts) => this.send(parts, true, release))
      .catch((err) => {
        this.log(`internal error: ${messageOf(err)}`);
        this.sock.destroy();
      })
      .finally(() => {
        this.inFlight.delete(p);
        this.signal();
      });
    this.inFlight.add(p);
    if (this.inFlight.size > (this.srv.counters.inFlightHighWater ?? 0)) this.srv.counters.inFlightHighWater = this.inFlight.size;
  }

  private async execute(r: Request, e: Export, payload: Buffer[] | null, before: Promise<void>[]): Promise<P.Bytes[]> {
    const b = this.srv.o.backend;
    const off = Number(r.offset);
    const fua = (r.flags & P.NBD_CMD_FLAG_FUA) !== 0;
    const ok = (): Buffer[] => [P.encodeSimpleReply(0, r.cookie)];
    try {
      switch (r.type) {
        case P.NBD_CMD_READ: {
          if (r.length === 0) return this.structured ? [P.encodeNoneChunk(r.cookie)] : ok();
          const data = await b.read(e.name, off, r.length);
          if (!(data instanceof Uint8Array) || data.length !== r.length) throw new Error(`backend.read returned ${data?.length} bytes for ${r.length}`);
          this.srv.count('bytesRead', r.length);
          return this.structured ? [P.encodeOffsetDataHeader(r.cookie, off, r.length), data] : [P.encodeSimpleReply(0, r.cookie), data];
        }
        case P.NBD_CMD_WRITE:
          if (r.length > 0) await b.write(e.name, off, payload!.map(view), fua);
          this.srv.count('bytesWritten', r.length);
          return ok();
        case P.NBD_CMD_FLUSH:
          await Promise.allSettled(before);
          await b.flush(e.name);
          return ok();
        case P.NBD_CMD_TRIM:
          if (r.length > 0) await b.trim(e.name, off, r.length);
          if (fua) await b.flush(e.name);
          this.srv.count('bytesTrimmed', r.length);
          return ok();
        case P.NBD_CMD_WRITE_ZEROES:
          if (r.length > 0) await b.writeZeroes(e.name, off, r.length, fua);
          this.srv.count('bytesZeroed', r.length);
          return ok();
        case P.NBD_CMD_CACHE:
          return ok(); // advisory; no cache to fill
        case P.NBD_CMD_BLOCK_STATUS: {
          const all = b.blockStatus ? checkedExtents(await b.blockStatus(e.name, off, r.length), off, r.length, e) : [{ lengthBytes: r.length, state: 0 }];
          return [P.encodeBlockStatusChunk(r.cookie, P.BASE_ALLOCATION_ID, r.flags & P.NBD_CMD_FLAG_REQ_ONE ? all.slice(0, 1) : all)];
        }
        default:
          throw new Error(`unreachable: command ${r.type}`);
      }
    } catch (err) {
      const errno = errnoOf(err);
      this.log(`${P.COMMAND_NAMES[r.type]} of ${r.length} bytes at ${off}: backend error -> ${P.ERRNO_NAMES[errno]}: ${messageOf(err)}`);
      return this.errorParts(r, errno, messageOf(err));
    }
  }
}

const delay = (ms: number): Promise<void> =>
  new Promise((r) => {
    const t = setTimeout(r, ms);
    t.unref();
  });

function listen(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(opts);
  });
}

/** True if `path` is a socket nobody listens on (left by a process that died): safe to replace. */
function staleSocket(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return Promise.resolve(false);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const s = net.connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

async function listenUnix(server: net.Server, path: string): Promise<void> {
  try {
    await listen(server, { path });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && (await staleSocket(path))) {
      unlinkSync(path);
      await listen(server, { path });
    } else throw e;
  }
  chmodSync(path, 0o600); // the socket is the door: only the user who ran up (its mode, not the umask's, says so)
}

const closeListener = (s: net.Server): Promise<void> => new Promise((r) => s.close(() => r()));

/**
 * Starts an NBD server on `socketPath` and/or `tcp` (at least one). The exports are checked now (a bad
 * block size rejects) and looked up again at every LIST/INFO/GO, so the backend may add exports later.
 */
export async function startNbdServer(o: NbdServerOptions): Promise<NbdServer> {
  if (o.socketPath === undefined && o.tcp === undefined) throw new Error('startNbdServer: give socketPath, tcp or both');
  // Anyone who can reach a TCP port can read and write every drive: plain TCP only when asked for by name.
  if (o.tcp !== undefined && o.tls === undefined && o.tcpInsecure !== true) throw new Error('startNbdServer: TCP needs tls (PSK keys) or tcpInsecure: true');
  if (o.tls !== undefined && o.tls.keys.size === 0) throw new Error('startNbdServer: tls.keys is empty');
  for (const e of o.backend.exports()) resolveExport(e);
  const srv = new Server(o);
  const listeners: net.Server[] = [];
  const make = (where: string): net.Server => {
    const s = net.createServer({ allowHalfOpen: true }, (sock) => srv.accept(sock, where));
    s.on('error', (e) => srv.log(`listener ${where}: ${e.message}`));
    listeners.push(s);
    return s;
  };
  const result: { socketPath?: string; tcp?: { host: string; port: number } } = {};
  try {
    if (o.socketPath !== undefined) {
      await listenUnix(make('unix'), o.socketPath);
      result.socketPath = o.socketPath;
    }
    if (o.tcp !== undefined) {
      const s = make('tcp');
      await listen(s, { host: o.tcp.host, port: o.tcp.port });
      const a = s.address() as net.AddressInfo;
      result.tcp = { host: o.tcp.host, port: a.port };
    }
  } catch (e) {
    await Promise.all(listeners.filter((l) => l.listening).map(closeListener));
    throw e;
  }
  srv.log(`listening on ${[result.socketPath, result.tcp && `${result.tcp.host}:${result.tcp.port} (${o.tls ? 'TLS-PSK required' : 'plain TCP: no authentication, no encryption'})`].filter(Boolean).join(' and ')}`);
  let closing: Promise<void> | null = null;
  return {
    ...result,
    counters: srv.counters,
    close(): Promise<void> {
      closing ??= (async () => {
        srv.closing = true;
        const stopped = Promise.all(listeners.map(closeListener));
        const conns = [...srv.conns];
        for (const [c] of conns) c.shutdown();
        await Promise.all(conns.map(([, done]) => done));
        await stopped;
        srv.log('closed');
      })();
      return closing;
    },
  };
}

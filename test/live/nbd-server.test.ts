/**
 * The NBD server (src/live/nbd-server.ts) against an in-memory backend: first with a hand-written client
 * speaking the protocol byte by byte (constants written out here, independently of nbd-protocol.ts), then
 * with the real tools when installed (nbdinfo, nbdcopy, nbdsh from libnbd; qemu-io/qemu-img; nbdkit).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNbdServer, type NbdBackend, type NbdExport, type NbdServer } from '../../src/live/nbd-server.js';
import { have, missing, runTool } from '../helpers/nbd-tools.js';

const MiB = 1 << 20;
const T = { timeout: 20_000 };

// ---- Wire constants, written out from proto.md ---------------------------------------------------
const NBDMAGIC = 0x4e42444d41474943n;
const IHAVEOPT = 0x49484156454f5054n;
const REPLY_MAGIC = 0x3e889045565a9n;
const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8 };
const REP = { ACK: 1, SERVER: 2, INFO: 3, ERR_UNSUP: 0x8000_0001, ERR_POLICY: 0x8000_0002, ERR_INVALID: 0x8000_0003, ERR_UNKNOWN: 0x8000_0006, ERR_TOO_BIG: 0x8000_0009 };
const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 };
const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6 };
const FLAG = { HAS_FLAGS: 1, READ_ONLY: 2, SEND_FLUSH: 4, SEND_FUA: 8, SEND_TRIM: 32, SEND_WRITE_ZEROES: 64, CAN_MULTI_CONN: 256 };
const CMD_FLAG_FUA = 1;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_MAGIC = 0x67446698;
const STRUCTURED_MAGIC = 0x668e33ef;
const EPERM = 1;
const EIO = 5;
const EINVAL = 22;
const ENOSPC = 28;

// ---- An in-memory backend ---------------------------------------------------------------------------

type Op = 'read' | 'write' | 'flush' | 'trim' | 'writeZeroes';

class MemBackend implements NbdBackend {
  readonly data = new Map<string, Uint8Array>();
  flushes = 0;
  /** Calls the server let through outside an export (must stay 0: it checks ranges first). */
  outside = 0;
  /** Every backend call, in order of start and end: 'read:sda:0:4096 start', '... end'. */
  readonly events: string[] = [];
  calls: Record<Op, number> = { read: 0, write: 0, flush: 0, trim: 0, writeZeroes: 0 };
  /** Milliseconds a call waits before doing its work (to force completion orders). */
  delay: (op: Op, offset: number, length: number) => number = () => 0;
  /** An error to reject a call with (by op and offset). */
  fail: (op: Op, offset: number) => Error | null = () => null;

  constructor(readonly list: NbdExport[]) {
    for (const e of list) this.data.set(e.name, new Uint8Array(e.sizeBytes));
  }

  exports(): NbdExport[] {
    return this.list;
  }

  private async op<R>(op: Op, exp: string, offset: number, length: number, work: () => R): Promise<R> {
    this.calls[op]++;
    const tag = `${op}:${exp}:${offset}:${length}`;
    this.events.push(`${tag} start`);
    const ms = this.delay(op, offset, length);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    const err = this.fail(op, offset);
    if (err) {
      this.events.push(`${tag} failed`);
      throw err;
    }
    const mem = this.data.get(exp)!;
    if (offset < 0 || offset + length > mem.length) this.outside++;
    if (offset < 0 || offset + length > mem.length) throw Object.assign(new Error(`${tag} outside the export`), { code: 'OUT_OF_RANGE' });
    const r = work();
    this.events.push(`${tag} end`);
    return r;
  }

  read(exp: string, offset: number, length: number): Promise<Uint8Array> {
    return this.op('read', exp, offset, length, () => this.data.get(exp)!.slice(offset, offset + length));
  }
  write(exp: string, offset: number, data: readonly Uint8Array[], _fua: boolean): Promise<void> {
    const length = data.reduce((n, d) => n + d.length, 0);
    return this.op('write', exp, offset, length, () => void data.reduce((at, d) => (this.data.get(exp)!.set(d, at), at + d.length), offset));
  }
  flush(exp: string): Promise<void> {
    return this.op('flush', exp, 0, 0, () => void this.flushes++);
  }
  trim(exp: string, offset: number, length: number): Promise<void> {
    return this.op('trim', exp, offset, length, () => undefined);
  }
  writeZeroes(exp: string, offset: number, length: number, _fua: boolean): Promise<void> {
    return this.op('writeZeroes', exp, offset, length, () => void this.data.get(exp)!.fill(0, offset, offset + length));
  }
}

const EXPORTS = (): NbdExport[] => [
  { name: 'sda', sizeBytes: 16 * MiB, blockBytes: 4096, description: 'SSD a (4 KiB blocks)' },
  { name: 'sdb', sizeBytes: 16 * MiB, blockBytes: 512, preferredBlockBytes: 4096 },
  { name: 'ro', sizeBytes: 1 * MiB, blockBytes: 512, readOnly: true },
  { name: 'small', sizeBytes: 1 * MiB, blockBytes: 512, maxPayloadBytes: 64 * 1024 },
];

// ---- A hand-written client ---------------------------------------------------------------------------

class RawClient {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: (() => void) | null = null;
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      this.wake();
    });
    sock.on('error', () => undefined);
    this.closed = new Promise((r) =>
      sock.once('close', () => {
        this.ended = true;
        this.wake();
        r();
      }),
    );
    sock.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Exactly n bytes, or a rejection on EOF or after `ms`. */
  async recv(n: number, ms = 5000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.buffered < n) {
      if (this.ended) throw new Error(`connection ended with ${this.buffered} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (${this.buffered} buffered)`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    const all = cat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.buffered -= n;
    return all.subarray(0, n);
  }

  /** Resolves once the server closed the connection (with nothing more to read), or rejects after `ms`. */
  async waitClosed(ms = 5000): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closed,
      new Promise((_, rej) => {
        t = setTimeout(() => rej(new Error('the server did not close the connection')), ms);
      }),
    ]).finally(() => clearTimeout(t));
  }

  get pending(): number {
    return this.buffered;
  }

  send(b: Buffer): void {
    this.sock.write(u8(b));
  }

  destroy(): void {
    this.sock.destroy();
  }

  /** Reads the greeting and sends the client flags (FIXED_NEWSTYLE | NO_ZEROES by default). */
  async greet(clientFlags = 3): Promise<Buffer> {
    const g = await this.recv(18);
    this.send(u32(clientFlags));
    return g;
  }

  option(opt: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(opt, 8);
    h.writeUInt32BE(declaredLength, 12);
    this.send(cat([h, data]));
  }

  async optReply(): Promise<{ opt: number; type: number; data: Buffer }> {
    const h = await this.recv(20);
    assert.equal(h.readBigUInt64BE(0), REPLY_MAGIC, 'option reply magic');
    const len = h.readUInt32BE(16);
    return { opt: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.recv(len) };
  }

  /** Sends INFO or GO and collects the replies up to the final one. */
  async infoGo(opt: number, name: string, infos: number[] = [INFO.BLOCK_SIZE]): Promise<{ infos: Map<number, Buffer>; final: number; message: string }> {
    this.option(opt, infoData(name, infos));
    const got = new Map<number, Buffer>();
    for (;;) {
      const r = await this.optReply();
      assert.equal(r.opt, opt);
      if (r.type === REP.INFO) got.set(r.data.readUInt16BE(0), r.data.subarray(2));
      else return { infos: got, final: r.type, message: r.data.toString('utf8') };
    }
  }

  /** Greeting, optional STRUCTURED_REPLY, GO on `name` with a block size request: ready for requests. */
  async open(name: string, structured = false): Promise<void> {
    await this.greet();
    if (structured) {
      this.option(OPT.STRUCTURED_REPLY);
      assert.equal((await this.optReply()).type, REP.ACK);
    }
    const r = await this.infoGo(OPT.GO, name);
    assert.equal(r.final, REP.ACK, r.message);
  }

  request(type: number, cookie: number, offset: number | bigint, length: number, opts: { flags?: number; data?: Buffer } = {}): void {
    this.send(this.encodeRequest(type, cookie, offset, length, opts));
  }

  encodeRequest(type: number, cookie: number, offset: number | bigint, length: number, opts: { flags?: number; data?: Buffer } = {}): Buffer {
    const h = Buffer.alloc(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(opts.flags ?? 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(BigInt(cookie), 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    return opts.data ? cat([h, opts.data]) : h;
  }

  /** One simple reply; `dataFor(cookie)` says how many data bytes follow a successful one. */
  async simpleReply(dataFor: (cookie: number) => number = () => 0): Promise<{ error: number; cookie: number; data: Buffer }> {
    const h = await this.recv(16);
    assert.equal(h.readUInt32BE(0), SIMPLE_MAGIC, 'simple reply magic');
    const error = h.readUInt32BE(4);
    const cookie = Number(h.readBigUInt64BE(8));
    const data = error === 0 ? await this.recv(dataFor(cookie)) : Buffer.alloc(0);
    return { error, cookie, data };
  }

  async chunk(): Promise<{ flags: number; type: number; cookie: number; payload: Buffer }> {
    const h = await this.recv(20);
    assert.equal(h.readUInt32BE(0), STRUCTURED_MAGIC, 'structured reply magic');
    return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: Number(h.readBigUInt64BE(8)), payload: await this.recv(h.readUInt32BE(16)) };
  }
}

/** A Uint8Array over a Buffer's bytes (Node's Buffer type and TypeScript's Uint8Array disagree about ArrayBufferLike). */
const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function cat(parts: Buffer[]): Buffer {
  const out = Buffer.alloc(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function sameBytes(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v, 0);
  return b;
}

function infoData(name: string, infos: number[]): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
  b.writeUInt32BE(n.length, 0);
  b.set(n, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((t, i) => b.writeUInt16BE(t, 6 + n.length + 2 * i));
  return b;
}

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

type Opts = Omit<Parameters<typeof startNbdServer>[0], 'backend' | 'socketPath'>;

/** A server on a fresh Unix socket for `fn`, closed (with its clients) in any case. */
async function withServer(backend: MemBackend, fn: (s: NbdServer, path: string, clients: RawClient[]) => Promise<void>, opts: Opts = {}): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nbd-test-'));
  const path = join(dir, 'nbd.sock');
  const lines: string[] = [];
  const server = await startNbdServer({ backend, socketPath: path, log: (l) => lines.push(l), ...opts });
  const clients: RawClient[] = [];
  try {
    await fn(server, path, clients);
  } catch (e) {
    if (process.env.NBD_TEST_LOG) console.error(lines.join('\n'));
    throw e;
  } finally {
    for (const c of clients) c.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function client(path: string, clients: RawClient[]): Promise<RawClient> {
  const c = await RawClient.connect(path);
  clients.push(c);
  return c;
}

// ---- Handshake ---------------------------------------------------------------------------------------

describe('NBD server: handshake and options (hand-written client)', () => {
  it('greets with NBDMAGIC, IHAVEOPT and FIXED_NEWSTYLE|NO_ZEROES; closes on unknown client flags', T, async () => {
    await withServer(new MemBackend(EXPORTS()), async (s, path, cs) => {
      const c = await client(path, cs);
      const g = await c.greet(0x4 | 1);
      assert.equal(g.readBigUInt64BE(0), NBDMAGIC);
      assert.equal(g.readBigUInt64BE(8), IHAVEOPT);
      assert.equal(g.readUInt16BE(16), 3);
      await c.waitClosed();
      assert.equal(s.counters.handshakesFailed, 1);
    });
  });

  it('LIST: one NBD_REP_SERVER per export (name, then description), then ACK; LIST with data is ERR_INVALID', T, async () => {
    await withServer(new MemBackend(EXPORTS()), async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.greet();
      c.option(OPT.LIST);
      const names: string[] = [];
      for (;;) {
        const r = await c.optReply();
        assert.equal(r.opt, OPT.LIST);
        if (r.type === REP.ACK) break;
        assert.equal(r.type, REP.SERVER);
        const len = r.data.readUInt32BE(0);
        names.push(r.data.subarray(4, 4 + len).toString());
        if (names.length === 1) assert.equal(r.data.subarray(4 + len).toString(), 'SSD a (4 KiB blocks)');
      }
      assert.deepEqual(names, ['sda', 'sdb', 'ro', 'small']);
      c.option(OPT.LIST, Buffer.from('x'));
      assert.equal((await c.optReply()).type, REP.ERR_INVALID);
    });
  });

  it('INFO: INFO_EXPORT (size, flags), INFO_BLOCK_SIZE (min = the export block), NAME and DESCRIPTION when asked; stays in haggling', T, async () => {
    await withServer(new MemBackend(EXPORTS()), async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.greet();
      const r = await c.infoGo(OPT.INFO, 'sda', [INFO.BLOCK_SIZE, INFO.NAME, INFO.DESCRIPTION]);
      assert.equal(r.final, REP.ACK);
      const ex = r.infos.get(INFO.EXPORT)!;
      assert.equal(ex.length, 10);
      assert.equal(ex.readBigUInt64BE(0), BigInt(16 * MiB));
      const flags = ex.readUInt16BE(8);
      const want = FLAG.HAS_FLAGS | FLAG.SEND_FLUSH | FLAG.SEND_FUA | FLAG.SEND_TRIM | FLAG.SEND_WRITE_ZEROES | FLAG.CAN_MULTI_CONN;
      assert.equal(flags & want, want, `flags 0x${flags.toString(16)}`);
      assert.equal(flags & FLAG.READ_ONLY, 0);
      const bs = r.infos.get(INFO.BLOCK_SIZE)!;
      assert.deepEqual([bs.readUInt32BE(0), bs.readUInt32BE(4), bs.readUInt32BE(8)], [4096, 4096, 32 * MiB]);
      assert.equal(r.infos.get(INFO.NAME)!.toString(), 'sda');
      assert.equal(r.infos.get(INFO.DESCRIPTION)!.toString(), 'SSD a (4 KiB blocks)');
      // sdb: 512-byte minimum, preferred as given; ro: READ_ONLY and no write features.
      const b = await c.infoGo(OPT.INFO, 'sdb');
      const bsb = b.infos.get(INFO.BLOCK_SIZE)!;
      assert.deepEqual([bsb.readUInt32BE(0), bsb.readUInt32BE(4)], [512, 4096]);
      const ro = (await c.infoGo(OPT.INFO, 'ro')).infos.get(INFO.EXPORT)!.readUInt16BE(8);
      assert.equal(ro & FLAG.READ_ONLY, FLAG.READ_ONLY);
      assert.equal(ro & (FLAG.SEND_FUA | FLAG.SEND_TRIM | FLAG.SEND_WRITE_ZEROES), 0);
      // Malformed INFO (name length beyond the data): ERR_INVALID, and parsing goes on.
      const bad = infoData('sda', []);
      bad.writeUInt32BE(100, 0);
      c.option(OPT.INFO, bad);
      assert.equal((await c.optReply()).type, REP.ERR_INVALID);
      assert.equal((await c.infoGo(OPT.INFO, 'sdb')).final, REP.ACK);
    });
  });

  it('unknown options (and STARTTLS) get ERR_UNSUP and parsing goes on; an unknown export gets ERR_UNKNOWN', T, async () => {
    await withServer(new MemBackend(EXPORTS()), async (s, path, cs) => {
      const c = await client(path, cs);
      await c.greet();
      c.option(4242, Buffer.alloc(100, 7));
      let r = await c.optReply();
      assert.deepEqual([r.opt, r.type], [4242, REP.ERR_UNSUP]);
      c.option(OPT.STARTTLS);
      r = await c.optReply();
      assert.deepEqual([r.opt, r.type], [OPT.STARTTLS, REP.ERR_UNSUP]);
      const u = await c.infoGo(OPT.INFO, 'nope');
      assert.equal(u.final, REP.ERR_UNKNOWN);
      assert.equal(u.infos.size, 0);
      assert.match(u.message, /nope/);
      const g = await c.infoGo(OPT.GO, 'nope');
      assert.equal(g.final, REP.ERR_UNKNOWN);
      // Still haggling: GO on a real export works.
      assert.equal((await c.infoGo(OPT.GO, 'sda')).final, REP.ACK);
      c.request(CMD.READ, 1, 0, 4096);
      assert.equal((await c.simpleReply(() => 4096)).error, 0);
      assert.equal(s.counters['options.unknown'], 1);
    });
  });

  it('ABORT: ACK, then the server closes', T, async () => {
    await withServer(new MemBackend(EXPORTS()), async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.greet();
      c.option(OPT.ABORT);
      const r = await c.optReply();
      assert.deepEqual([r.opt, r.type, r.data.length], [OPT.ABORT, REP.ACK, 0]);
      await c.waitClosed();
    });
  });

  it('EXPORT_NAME: size and flags, 124 zeroes unless NO_ZEROES; an unknown name closes the connection', T, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (_s, path, cs) => {
      const a = await client(path, cs);
      await a.greet(3);
      a.option(OPT.EXPORT_NAME, Buffer.from('sdb'));
      const r = await a.recv(10);
      assert.equal(r.readBigUInt64BE(0), BigInt(16 * MiB));
      assert.equal(r.readUInt16BE(8) & FLAG.HAS_FLAGS, 1);
      a.request(CMD.READ, 9, 512, 512);
      const rep = await a.simpleReply(() => 512);
      assert.deepEqual([rep.error, rep.cookie, rep.data.length], [0, 9, 512]);

      const b = await client(path, cs);
      await b.greet(1); // FIXED_NEWSTYLE only: the zeroes follow
      b.option(OPT.EXPORT_NAME, Buffer.from('sda'));
      const full = await b.recv(134);
      assert.equal(full.readBigUInt64BE(0), BigInt(16 * MiB));
      assert.ok(full.subarray(10).every((x) => x === 0));
      b.request(CMD.READ, 1, 0, 4096);
      assert.equal((await b.simpleReply(() => 4096)).error, 0);

      const d = await client(path, cs);
      await d.greet();
      d.option(OPT.EXPORT_NAME, Buffer.from('nope'));
      await d.waitClosed();
      assert.equal(d.pending, 0);
    });
  });

  it('an option longer than 64 KiB gets ERR_TOO_BIG and a closed connection; bad option magic closes', T, async () => {
    await withServer(new MemBackend(EXPORTS()), async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.greet();
      c.option(OPT.LIST, Buffer.alloc(0), 100_000);
      assert.equal((await c.optReply()).type, REP.ERR_TOO_BIG);
      await c.waitClosed();
      const d = await client(path, cs);
      await d.greet();
      d.send(Buffer.alloc(16, 0x41));
      await d.waitClosed();
    });
  });

  it('a client that never completes the handshake is disconnected after handshakeTimeoutMs', T, async () => {
    await withServer(
      new MemBackend(EXPORTS()),
      async (s, path, cs) => {
        const c = await client(path, cs);
        await c.recv(18);
        c.send(u32(3)); // client flags, then nothing: a slow handshaker holds a slot until the deadline
        await c.waitClosed(3000);
        assert.equal(s.counters.handshakesFailed, 1);
        await until(() => s.counters.connectionsOpen === 0, 'the slot to free');
      },
      { handshakeTimeoutMs: 200 },
    );
  });
});

// ---- Admission across connections ---------------------------------------------------------------------

describe('NBD server: admission across connections', () => {
  it('many connections with large pipelined reads stay within maxInFlightBytes (server-wide), and all get their bytes', T, async () => {
    const be = new MemBackend([{ name: 'sda', sizeBytes: 16 * MiB, blockBytes: 512 }]);
    be.data.get('sda')!.set(pattern(16 * MiB, 9));
    be.delay = () => 5; // reads overlap, so admission has something to bound
    const totalBound = 6 * MiB;
    await withServer(
      be,
      async (s, path, cs) => {
        const conns = await Promise.all(Array.from({ length: 8 }, () => client(path, cs)));
        await Promise.all(conns.map((c) => c.open('sda')));
        // 8 connections x 4 reads of 1 MiB = 32 MiB asked for at once; each connection alone may hold 4 MiB.
        conns.forEach((c, k) => {
          for (let i = 0; i < 4; i++) c.request(CMD.READ, i, ((k * 4 + i) % 16) * MiB, MiB);
        });
        await Promise.all(
          conns.map(async (c, k) => {
            for (let i = 0; i < 4; i++) {
              const r = await c.simpleReply(() => MiB);
              assert.equal(r.error, 0);
              const off = ((k * 4 + r.cookie) % 16) * MiB;
              assert.ok(sameBytes(r.data, be.data.get('sda')!.subarray(off, off + MiB)), `connection ${k} read ${r.cookie}`);
            }
          }),
        );
        assert.ok(s.counters.inFlightBytesHighWater! <= totalBound, `high water ${s.counters.inFlightBytesHighWater} > ${totalBound}`);
        assert.ok(s.counters.inFlightBytesHighWater! >= MiB);
        assert.ok(s.counters.budgetWaits! > 0, 'some reads waited for the shared budget');
      },
      { maxInFlightBytes: totalBound, maxInFlightBytesPerConnection: 4 * MiB },
    );
  });

  it('a client that stops reading its replies is cut off after replyStallMs and its bytes return; idle connections stay', T, async () => {
    const be = new MemBackend([{ name: 'sda', sizeBytes: 64 * MiB, blockBytes: 512 }]);
    await withServer(
      be,
      async (s, path, cs) => {
        const idle = await client(path, cs);
        await idle.open('sda');
        const hog = await client(path, cs);
        await hog.open('sda');
        hog.sock.pause(); // reads nothing more: 32 MiB of replies cannot all fit in the socket buffers
        for (let i = 0; i < 16; i++) hog.request(CMD.READ, i, i * 2 * MiB, 2 * MiB);
        await until(() => s.counters.replyStalls === 1, 'the stalled reader to be cut off', 10_000);
        await until(() => s.counters.connectionsOpen === 1, 'its slot to free', 5_000);
        // The idle connection, silent all along, still works; the budget came back.
        idle.request(CMD.READ, 99, 0, 4096);
        assert.equal((await idle.simpleReply(() => 4096)).error, 0);
      },
      { replyStallMs: 300, maxInFlightBytes: 64 * MiB },
    );
  });
});

// ---- Transmission --------------------------------------------------------------------------------------

describe('NBD server: transmission (hand-written client)', () => {
  it('write then read back the same bytes (simple replies); FUA, TRIM, WRITE_ZEROES, CACHE', T, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      const data = pattern(8192, 1);
      c.request(CMD.WRITE, 1, 4096, 8192, { data, flags: CMD_FLAG_FUA });
      assert.deepEqual(await c.simpleReply(), { error: 0, cookie: 1, data: Buffer.alloc(0) });
      assert.deepEqual(Buffer.from(be.data.get('sda')!.subarray(4096, 12288)), data);
      c.request(CMD.READ, 2, 4096, 8192);
      const r = await c.simpleReply(() => 8192);
      assert.equal(r.cookie, 2);
      assert.deepEqual(r.data, data);
      c.request(CMD.WRITE_ZEROES, 3, 8192, 4096, { flags: 2 /* NO_HOLE */ });
      assert.equal((await c.simpleReply()).error, 0);
      assert.ok(be.data.get('sda')!.subarray(8192, 12288).every((x) => x === 0));
      c.request(CMD.TRIM, 4, 0, 4096, { flags: CMD_FLAG_FUA });
      assert.equal((await c.simpleReply()).error, 0);
      c.request(CMD.CACHE, 5, 0, 4096);
      assert.equal((await c.simpleReply()).error, 0);
      assert.equal(be.calls.trim, 1);
      assert.equal(be.flushes, 1, 'TRIM with FUA flushes');
      assert.equal(s.counters.bytesWritten, 8192);
      assert.equal(s.counters.bytesRead, 8192);
      assert.equal(s.counters['requests.write'], 1);
      assert.equal(s.counters['requests.read'], 1);
    });
  });

  it('replies finished in one turn of the event loop leave in one socket write, not one each', T, async (t) => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (_s, path, cs) => {
      // Count the server side's writes to the kernel: a stream's _write or _writev per flush, on accepted sockets only.
      let writes = 0;
      const proto = net.Socket.prototype as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
      const one = proto._write;
      const many = proto._writev;
      proto._write = function (this: net.Socket, ...a: unknown[]) {
        if ((this as unknown as { server: unknown }).server) writes++;
        return one.apply(this, a);
      };
      proto._writev = function (this: net.Socket, ...a: unknown[]) {
        if ((this as unknown as { server: unknown }).server) writes++;
        return many.apply(this, a);
      };
      t.after(() => {
        proto._write = one;
        proto._writev = many;
      });
      const c = await client(path, cs);
      await c.open('sda');
      const before = writes;
      const reqs = cat(Array.from({ length: 16 }, (_, i) => c.encodeRequest(CMD.WRITE, i, i * 4096, 4096, { data: pattern(4096, i) })));
      c.send(reqs); // all sixteen in one chunk: the server reads them in one turn or a few
      for (let i = 0; i < 16; i++) assert.equal((await c.simpleReply()).error, 0);
      assert.ok(writes - before <= 4, `16 replies took ${writes - before} socket writes`);
    });
  });

  it('replies go out in completion order: a slow read then a fast read are answered fast first', T, async () => {
    const be = new MemBackend(EXPORTS());
    be.delay = (op, offset) => (op === 'read' && offset === 0 ? 300 : 0);
    await withServer(be, async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      be.data.get('sda')!.set(pattern(8192, 2));
      c.request(CMD.READ, 100, 0, 4096);
      c.request(CMD.READ, 200, 4096, 4096);
      const first = await c.simpleReply(() => 4096);
      const second = await c.simpleReply(() => 4096);
      assert.deepEqual([first.cookie, second.cookie], [200, 100]);
      assert.deepEqual(first.data, pattern(8192, 2).subarray(4096));
      assert.deepEqual(second.data, pattern(8192, 2).subarray(0, 4096));
    });
  });

  it('unaligned requests get EINVAL without reaching the backend; the connection stays usable', T, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      c.request(CMD.READ, 1, 100, 4096);
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.READ, 2, 0, 100);
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.WRITE, 3, 512, 512, { data: Buffer.alloc(512, 1) }); // its payload is consumed
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.TRIM, 4, 4096, 1000);
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.WRITE_ZEROES, 5, 1, 4096);
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.READ, 6, 4096, 4096);
      const r = await c.simpleReply(() => 4096);
      assert.deepEqual([r.error, r.cookie], [0, 6]);
      assert.deepEqual([be.calls.write, be.calls.trim, be.calls.writeZeroes, be.calls.read], [0, 0, 0, 1]);
      assert.equal(s.counters['errors.EINVAL'], 5);
      assert.ok(be.data.get('sda')!.every((x) => x === 0), 'nothing written');
    });
  });

  it('out of range: READ/TRIM/CACHE get EINVAL, WRITE/WRITE_ZEROES get ENOSPC, and nothing is written', T, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sdb');
      const size = 16 * MiB;
      c.request(CMD.READ, 1, size, 512);
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.READ, 2, size - 512, 1024);
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.WRITE, 3, size - 512, 1024, { data: Buffer.alloc(1024, 0xee) });
      assert.equal((await c.simpleReply()).error, ENOSPC);
      c.request(CMD.WRITE, 4, 0xffff_ffff_ffff_fe00n, 512, { data: Buffer.alloc(512, 0xee) });
      assert.equal((await c.simpleReply()).error, ENOSPC);
      c.request(CMD.WRITE_ZEROES, 5, size, 512);
      assert.equal((await c.simpleReply()).error, ENOSPC);
      c.request(CMD.TRIM, 6, size - 512, 1024);
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.CACHE, 7, size, 512);
      assert.equal((await c.simpleReply()).error, EINVAL);
      // The last block itself is fine, and length 0 at the end is allowed.
      c.request(CMD.WRITE, 8, size - 512, 512, { data: Buffer.alloc(512, 0x11) });
      assert.equal((await c.simpleReply()).error, 0);
      c.request(CMD.READ, 9, size, 0);
      assert.equal((await c.simpleReply()).error, 0);
      assert.deepEqual([be.calls.write, be.calls.writeZeroes, be.calls.trim], [1, 0, 0]);
      const mem = be.data.get('sdb')!;
      assert.ok(mem.subarray(0, size - 512).every((x) => x === 0));
      assert.ok(mem.subarray(size - 512).every((x) => x === 0x11));
      assert.equal(s.counters['errors.ENOSPC'], 3);
    });
  });

  it('read-only export: writes get EPERM; oversize READ gets EINVAL; oversize WRITE is discarded with EINVAL; a huge one closes', T, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (s, path, cs) => {
      const ro = await client(path, cs);
      await ro.open('ro');
      ro.request(CMD.WRITE, 1, 0, 512, { data: Buffer.alloc(512, 1) });
      assert.equal((await ro.simpleReply()).error, EPERM);
      ro.request(CMD.WRITE_ZEROES, 2, 0, 512);
      assert.equal((await ro.simpleReply()).error, EPERM);
      ro.request(CMD.READ, 3, 0, 512);
      assert.equal((await ro.simpleReply(() => 512)).error, 0);

      const sm = await client(path, cs);
      await sm.open('small'); // max payload 64 KiB
      sm.request(CMD.READ, 1, 0, 128 * 1024);
      assert.equal((await sm.simpleReply()).error, EINVAL);
      sm.request(CMD.WRITE, 2, 0, 128 * 1024, { data: Buffer.alloc(128 * 1024, 0x77) });
      assert.equal((await sm.simpleReply()).error, EINVAL);
      sm.request(CMD.READ, 3, 0, 64 * 1024);
      const r = await sm.simpleReply(() => 64 * 1024);
      assert.deepEqual([r.error, r.cookie], [0, 3]);
      assert.equal(s.counters.payloadBytesDiscarded, 512 + 128 * 1024);
      sm.request(CMD.WRITE, 4, 0, 0xffff_fe00); // ~4 GiB: not worth discarding
      await sm.waitClosed();
      assert.equal(be.calls.write, 0);
      assert.ok(be.data.get('small')!.every((x) => x === 0));
    });
  });

  it('bad request magic closes the connection; another client is unaffected', T, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (s, path, cs) => {
      const good = await client(path, cs);
      await good.open('sda');
      const bad = await client(path, cs);
      await bad.open('sda');
      bad.send(Buffer.alloc(28, 0x55));
      await bad.waitClosed();
      good.request(CMD.READ, 1, 0, 4096);
      assert.equal((await good.simpleReply(() => 4096)).error, 0);
      assert.equal(s.counters.badMagic, 1);
    });
  });

  it('unknown command and unknown flags get EINVAL; an unknown command flagged with a payload closes', T, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      c.request(99, 1, 0, 4096);
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.READ, 2, 0, 4096, { flags: 0x100 });
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.READ, 3, 0, 4096, { flags: 2 /* NO_HOLE on a read */ });
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.WRITE_ZEROES, 4, 0, 4096, { flags: 16 /* FAST_ZERO, not advertised */ });
      assert.equal((await c.simpleReply()).error, EINVAL);
      c.request(CMD.READ, 5, 0, 4096);
      assert.equal((await c.simpleReply(() => 4096)).error, 0);
      c.request(99, 6, 0, 4096, { flags: 32 /* PAYLOAD_LEN */ });
      await c.waitClosed();
    });
  });

  it('backend errors map to NBD errors: OUT_OF_RANGE/UNALIGNED -> EINVAL, DEVICE_ERROR -> EIO, NOSPC -> ENOSPC, other -> EIO', T, async () => {
    const be = new MemBackend(EXPORTS());
    const codes: Record<number, string | undefined> = { 0: 'OUT_OF_RANGE', 4096: 'UNALIGNED', 8192: 'DEVICE_ERROR', 12288: 'NOSPC', 16384: undefined };
    be.fail = (op, offset) => (op === 'write' && offset in codes ? Object.assign(new Error(`injected at ${offset}`), { code: codes[offset] }) : null);
    await withServer(be, async (s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      const got: number[] = [];
      for (const off of [0, 4096, 8192, 12288, 16384]) {
        c.request(CMD.WRITE, off, off, 4096, { data: Buffer.alloc(4096, 1) });
        got.push((await c.simpleReply()).error);
      }
      assert.deepEqual(got, [EINVAL, EINVAL, EIO, ENOSPC, EIO]);
      assert.equal(s.counters['errors.EIO'], 2);
    });
  });

  it('FLUSH is answered after the earlier writes completed and after backend.flush resolved', T, async () => {
    const be = new MemBackend(EXPORTS());
    be.delay = (op, offset) => (op === 'write' ? (offset === 0 ? 300 : 100) : op === 'flush' ? 50 : 0);
    await withServer(be, async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      c.request(CMD.WRITE, 1, 0, 4096, { data: Buffer.alloc(4096, 1) });
      c.request(CMD.WRITE, 2, 4096, 4096, { data: Buffer.alloc(4096, 2) });
      c.request(CMD.FLUSH, 3, 0, 0);
      c.request(CMD.READ, 4, 8192, 4096); // after the flush, not waited for by it
      const order: number[] = [];
      for (let i = 0; i < 4; i++) order.push((await c.simpleReply((k) => (k === 4 ? 4096 : 0))).cookie);
      assert.deepEqual(order, [4, 2, 1, 3]);
      const ev = be.events;
      const at = (e: string): number => {
        const i = ev.indexOf(e);
        assert.ok(i >= 0, `${e} in ${ev.join(', ')}`);
        return i;
      };
      assert.ok(at('flush:sda:0:0 start') > at('write:sda:0:4096 end'));
      assert.ok(at('flush:sda:0:0 start') > at('write:sda:4096:4096 end'));
      assert.equal(be.flushes, 1);
      // A flush's offset and length must be 0.
      c.request(CMD.FLUSH, 5, 512, 0);
      assert.equal((await c.simpleReply()).error, EINVAL);
    });
  });

  it('DISC: in-flight requests are answered, then the connection closes', T, async () => {
    const be = new MemBackend(EXPORTS());
    be.delay = (op) => (op === 'read' ? 200 : 0);
    await withServer(be, async (s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      c.request(CMD.READ, 1, 0, 4096);
      c.request(CMD.DISC, 2, 0, 0);
      const r = await c.simpleReply(() => 4096);
      assert.deepEqual([r.error, r.cookie], [0, 1]);
      await c.waitClosed();
      assert.equal(s.counters['requests.disc'], 1);
    });
  });

  it('structured replies: READ as one OFFSET_DATA chunk with DONE, errors as ERROR chunks, length 0 as NONE', T, async () => {
    const be = new MemBackend(EXPORTS());
    be.data.get('sda')!.set(pattern(4096, 3), 8192);
    be.fail = (op, offset) => (op === 'read' && offset === 12288 ? Object.assign(new Error('media error'), { code: 'DEVICE_ERROR' }) : null);
    await withServer(be, async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda', true);
      c.request(CMD.READ, 7, 8192, 4096);
      let k = await c.chunk();
      assert.deepEqual([k.flags, k.type, k.cookie, k.payload.length], [1, 1, 7, 8 + 4096]);
      assert.equal(k.payload.readBigUInt64BE(0), 8192n);
      assert.deepEqual(k.payload.subarray(8), pattern(4096, 3));
      c.request(CMD.READ, 8, 100, 4096);
      k = await c.chunk();
      assert.deepEqual([k.flags, k.type, k.cookie], [1, 0x8001, 8]);
      assert.equal(k.payload.readUInt32BE(0), EINVAL);
      const mlen = k.payload.readUInt16BE(4);
      assert.equal(k.payload.length, 6 + mlen);
      assert.match(k.payload.subarray(6).toString(), /aligned/);
      c.request(CMD.READ, 9, 12288, 4096);
      k = await c.chunk();
      assert.deepEqual([k.type, k.cookie, k.payload.readUInt32BE(0)], [0x8001, 9, EIO]);
      c.request(CMD.READ, 10, 0, 0);
      k = await c.chunk();
      assert.deepEqual([k.flags, k.type, k.cookie, k.payload.length], [1, 0, 10, 0]);
      // Other successful commands may use simple replies.
      c.request(CMD.WRITE, 11, 0, 4096, { data: Buffer.alloc(4096, 9) });
      const w = await c.simpleReply();
      assert.deepEqual([w.error, w.cookie], [0, 11]);
    });
  });

  it('base:allocation: SET_META_CONTEXT needs structured replies; BLOCK_STATUS reports the range as data', T, async () => {
    await withServer(new MemBackend(EXPORTS()), async (_s, path, cs) => {
      const meta = (name: string, queries: string[]): Buffer => {
        const n = Buffer.from(name);
        const parts = [u32(n.length), n, u32(queries.length)];
        for (const q of queries) parts.push(u32(Buffer.byteLength(q)), Buffer.from(q));
        return cat(parts);
      };
      const c = await client(path, cs);
      await c.greet();
      c.option(10 /* SET_META_CONTEXT */, meta('sda', ['base:allocation']));
      assert.equal((await c.optReply()).type, REP.ERR_INVALID);
      c.option(OPT.STRUCTURED_REPLY);
      assert.equal((await c.optReply()).type, REP.ACK);
      c.option(9 /* LIST_META_CONTEXT */, meta('sda', []));
      let r = await c.optReply();
      assert.equal(r.type, 4 /* REP_META_CONTEXT */);
      assert.equal(r.data.subarray(4).toString(), 'base:allocation');
      assert.equal((await c.optReply()).type, REP.ACK);
      c.option(10, meta('sda', ['base:allocation', 'x-other:thing']));
      r = await c.optReply();
      assert.equal(r.type, 4);
      const id = r.data.readUInt32BE(0);
      assert.equal((await c.optReply()).type, REP.ACK);
      assert.equal((await c.infoGo(OPT.GO, 'sda')).final, REP.ACK);
      c.request(7 /* BLOCK_STATUS */, 1, 8192, 16384);
      const k = await c.chunk();
      assert.deepEqual([k.flags, k.type, k.cookie, k.payload.length], [1, 5, 1, 12]);
      assert.deepEqual([k.payload.readUInt32BE(0), k.payload.readUInt32BE(4), k.payload.readUInt32BE(8)], [id, 16384, 0]);
      // Without a selected context (another connection), BLOCK_STATUS is EINVAL.
      const d = await client(path, cs);
      await d.open('sda', true);
      d.request(7, 2, 0, 4096);
      const e = await d.chunk();
      assert.deepEqual([e.type, e.payload.readUInt32BE(0)], [0x8001, EINVAL]);
    });
  });

  it('base:allocation: BLOCK_STATUS lists the backend\'s extents (holes as HOLE|ZERO), one with REQ_ONE; a broken answer is EIO', T, async () => {
    const be = new MemBackend(EXPORTS());
    let answer: { lengthBytes: number; state: number }[] = [];
    Object.assign(be, { blockStatus: async () => answer });
    await withServer(be, async (_s, path, cs) => {
      const c = await client(path, cs);
      await c.greet();
      c.option(OPT.STRUCTURED_REPLY);
      assert.equal((await c.optReply()).type, REP.ACK);
      const n = Buffer.from('sda');
      const q = Buffer.from('base:allocation');
      c.option(10 /* SET_META_CONTEXT */, cat([u32(n.length), n, u32(1), u32(q.length), q]));
      const id = (await c.optReply()).data.readUInt32BE(0);
      assert.equal((await c.optReply()).type, REP.ACK);
      assert.equal((await c.infoGo(OPT.GO, 'sda')).final, REP.ACK);
      const extents = async (cookie: number, flags = 0): Promise<number[]> => {
        c.request(7 /* BLOCK_STATUS */, cookie, 8192, 16384, { flags });
        const k = await c.chunk();
        assert.equal(k.type, 5, `a block status chunk, not 0x${k.type.toString(16)}`);
        assert.equal(k.payload.readUInt32BE(0), id);
        return Array.from({ length: (k.payload.length - 4) / 4 }, (_, i) => k.payload.readUInt32BE(4 + 4 * i));
      };
      answer = [{ lengthBytes: 4096, state: 3 }, { lengthBytes: 8192, state: 0 }]; // a prefix of the range: allowed
      assert.deepEqual(await extents(1), [4096, 3, 8192, 0]);
      assert.deepEqual(await extents(2, 1 << 3 /* REQ_ONE */), [4096, 3]);
      for (const bad of [[{ lengthBytes: 100, state: 0 }], [{ lengthBytes: 32768, state: 0 }], []]) {
        answer = bad;
        c.request(7, 3, 8192, 16384);
        const e = await c.chunk();
        assert.deepEqual([e.type, e.payload.readUInt32BE(0)], [0x8001, EIO], JSON.stringify(bad));
      }
    });
  });

  it('a client that disconnects mid-request: the backend call completes, its reply is dropped, a new client is served', T, async () => {
    const be = new MemBackend(EXPORTS());
    be.delay = (op) => (op === 'read' ? 200 : 0);
    await withServer(be, async (s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      c.request(CMD.READ, 1, 0, 4096);
      await until(() => be.calls.read === 1, 'the read to reach the backend');
      c.destroy();
      // And one that leaves in the middle of a write's payload: nothing is written.
      const w = await client(path, cs);
      await w.open('sda');
      const h = Buffer.alloc(28);
      h.writeUInt32BE(REQUEST_MAGIC, 0);
      h.writeUInt16BE(CMD.WRITE, 6);
      h.writeBigUInt64BE(4096n, 16);
      h.writeUInt32BE(65536, 24);
      w.send(cat([h, Buffer.alloc(1000, 0xab)]));
      await sleep(50);
      w.destroy();
      await until(() => be.events.includes('read:sda:0:4096 end'), 'the read to finish');
      await until(() => s.counters.repliesDropped === 1, 'the dropped reply');
      await until(() => s.counters.connectionsOpen === 0, 'both connections to be gone');
      assert.equal(be.calls.write, 0);
      const n = await client(path, cs);
      await n.open('sda');
      n.request(CMD.READ, 2, 0, 4096);
      assert.equal((await n.simpleReply(() => 4096)).error, 0);
    });
  });

  it('a flood of requests is bounded: at most maxInFlightPerConnection in flight, all answered, others served meanwhile', T, async () => {
    const be = new MemBackend(EXPORTS());
    be.delay = (op) => (op === 'read' ? 20 : 0);
    await withServer(
      be,
      async (s, path, cs) => {
        const f = await client(path, cs);
        await f.open('sdb');
        const N = 300;
        const burst: Buffer[] = [];
        for (let i = 0; i < N; i++) {
          const h = Buffer.alloc(28);
          h.writeUInt32BE(REQUEST_MAGIC, 0);
          h.writeBigUInt64BE(BigInt(i), 8);
          h.writeBigUInt64BE(BigInt((i % 64) * 4096), 16);
          h.writeUInt32BE(4096, 24);
          burst.push(h);
        }
        f.send(cat(burst)); // not reading replies yet
        await sleep(100);
        // Another client is served while the flood is being worked through.
        const o = await client(path, cs);
        await o.open('sda');
        const t0 = Date.now();
        o.request(CMD.READ, 1, 0, 4096);
        assert.equal((await o.simpleReply(() => 4096)).error, 0);
        assert.ok(Date.now() - t0 < 1000, `the other client waited ${Date.now() - t0} ms`);
        const seen = new Set<number>();
        for (let i = 0; i < N; i++) {
          const r = await f.simpleReply(() => 4096);
          assert.equal(r.error, 0);
          seen.add(r.cookie);
        }
        assert.equal(seen.size, N);
        assert.ok(s.counters.inFlightHighWater! <= 4, `in flight at most ${s.counters.inFlightHighWater}`);
        assert.equal(s.counters['requests.read'], N + 1);
      },
      { maxInFlightPerConnection: 4 },
    );
  });

  it('a client that does not read its replies: the server stops reading its requests (unsent replies bounded), then catches up', T, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sdb');
      const N = 60;
      const burst: Buffer[] = [];
      for (let i = 0; i < N; i++) {
        const h = Buffer.alloc(28);
        h.writeUInt32BE(REQUEST_MAGIC, 0);
        h.writeBigUInt64BE(BigInt(i), 8);
        h.writeBigUInt64BE(BigInt((i % 16) * MiB), 16);
        h.writeUInt32BE(MiB, 24);
        burst.push(h);
      }
      c.sock.pause(); // read nothing
      c.send(cat(burst));
      await sleep(300);
      const served = s.counters['requests.read']!;
      assert.ok(served < 40, `${served} of ${N} 1 MiB reads taken while the client reads no replies`);
      c.sock.resume();
      for (let i = 0; i < N; i++) assert.equal((await c.simpleReply(() => MiB)).error, 0);
      assert.equal(s.counters['requests.read'], N);
    });
  });

  it('payload bytes in flight are bounded by maxInFlightBytesPerConnection', T, async () => {
    const be = new MemBackend(EXPORTS());
    be.delay = () => 30;
    await withServer(
      be,
      async (s, path, cs) => {
        const c = await client(path, cs);
        await c.open('sdb');
        for (let i = 0; i < 8; i++) c.request(CMD.READ, i, i * 32768, 32768);
        for (let i = 0; i < 8; i++) c.request(CMD.WRITE, 100 + i, i * 32768, 32768, { data: Buffer.alloc(32768, i) });
        for (let i = 0; i < 16; i++) assert.equal((await c.simpleReply((k) => (k < 100 ? 32768 : 0))).error, 0);
        assert.ok(s.counters.inFlightHighWater! <= 2, `in flight at most ${s.counters.inFlightHighWater}`);
      },
      { maxInFlightBytesPerConnection: 64 * 1024 },
    );
  });

  it('a stale socket file is replaced, a live one is not; close() removes the socket', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nbd-test-'));
    const path = join(dir, 'nbd.sock');
    try {
      // A socket bound by a process that never listens (or died): connecting is refused.
      const py = spawnSync('python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`]);
      assert.equal(py.status, 0, String(py.stderr));
      assert.ok(existsSync(path));
      const a = await startNbdServer({ backend: new MemBackend(EXPORTS()), socketPath: path });
      try {
        await assert.rejects(startNbdServer({ backend: new MemBackend(EXPORTS()), socketPath: path }), /EADDRINUSE/);
        const c = await RawClient.connect(path);
        assert.equal((await c.recv(18)).readBigUInt64BE(0), NBDMAGIC);
        c.destroy();
      } finally {
        await a.close();
      }
      assert.ok(!existsSync(path), 'the socket file is removed on close');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('garbage at every stage (seeded) never crashes the server nor writes outside an export', T, async () => {
    const be = new MemBackend(EXPORTS());
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const junk = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rnd(256)));
    await withServer(be, async (s, path, cs) => {
      for (let i = 0; i < 40; i++) {
        const c = await client(path, cs);
        const stage = i % 4;
        if (stage === 0) c.send(junk(1 + rnd(64)));
        else {
          await c.greet();
          if (stage === 1) c.send(junk(1 + rnd(200)));
          else {
            assert.equal((await c.infoGo(OPT.GO, 'small')).final, REP.ACK);
            if (stage === 2) c.send(junk(28 * (1 + rnd(8))));
            else {
              // Well-formed headers with random fields: any command, flags, offset and length.
              for (let k = 0; k < 8; k++) {
                const h = Buffer.alloc(28);
                h.writeUInt32BE(REQUEST_MAGIC, 0);
                h.writeUInt16BE(rnd(1 << 16) & 0x1f, 4);
                h.writeUInt16BE(rnd(10), 6);
                h.writeUInt32BE(rnd(1 << 24), 16);
                h.writeUInt32BE(rnd(1 << 22), 24);
                c.send(h);
              }
            }
          }
        }
        await sleep(5);
        c.destroy();
      }
      await until(() => s.counters.connectionsOpen === 0, 'every connection to end');
      const ok = await client(path, cs);
      await ok.open('sda');
      ok.request(CMD.READ, 1, 0, 4096);
      assert.equal((await ok.simpleReply(() => 4096)).error, 0);
      assert.equal(be.outside, 0);
    });
  });

  it('a connection beyond maxConnections is told the server is full (ERR_POLICY with a message, ABORT honoured); TCP works too', T, async () => {
    const be = new MemBackend(EXPORTS());
    const dir = mkdtempSync(join(tmpdir(), 'nbd-test-'));
    const server = await startNbdServer({ backend: be, socketPath: join(dir, 's'), tcp: { host: '127.0.0.1', port: 0 }, tcpInsecure: true, maxConnections: 2 });
    const socks: net.Socket[] = [];
    try {
      assert.ok(server.tcp && server.tcp.port > 0);
      const a = await RawClient.connect(join(dir, 's'));
      const b = await RawClient.connect(join(dir, 's'));
      socks.push(a.sock, b.sock);
      await a.recv(18);
      await b.recv(18);
      const c = await RawClient.connect(join(dir, 's'));
      socks.push(c.sock);
      await c.greet();
      c.option(OPT.GO, infoData('sda', []));
      const r = await c.optReply();
      assert.deepEqual([r.opt, r.type], [OPT.GO, REP.ERR_POLICY]);
      assert.match(r.data.toString(), /server full: 2 NBD connections open/);
      c.option(OPT.ABORT);
      assert.deepEqual((await c.optReply()).type, REP.ACK);
      await c.waitClosed();
      assert.equal(server.counters.connectionsToldFull, 1);
      assert.equal(server.counters.connectionsOpen, 2);
      a.destroy();
      await until(() => server.counters.connectionsOpen === 1, 'a slot to free');
      const t = net.connect({ host: '127.0.0.1', port: server.tcp!.port });
      socks.push(t);
      const greeting = await new Promise<Buffer>((res, rej) => {
        t.once('data', res);
        t.once('error', rej);
      });
      assert.equal(greeting.readBigUInt64BE(0), NBDMAGIC);
    } finally {
      for (const s of socks) s.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close() ends while a backend call is in flight; invalid exports are refused at start', T, async () => {
    const be = new MemBackend(EXPORTS());
    be.delay = (op) => (op === 'read' ? 300 : 0);
    await withServer(be, async (s, path, cs) => {
      const c = await client(path, cs);
      await c.open('sda');
      c.request(CMD.READ, 1, 0, 4096);
      await until(() => be.calls.read === 1, 'the read');
      await s.close();
      await c.waitClosed();
    });
    await assert.rejects(startNbdServer({ backend: new MemBackend([{ name: 'x', sizeBytes: 4096, blockBytes: 3000 }]), socketPath: join(tmpdir(), 'never.sock') }), /power of 2/);
  });
});

// ---- The real tools ----------------------------------------------------------------------------------------

const HAVE = {
  nbdinfo: have('nbdinfo', ['--version']),
  nbdcopy: have('nbdcopy', ['--version']),
  nbdkit: have('nbdkit', ['--version']),
  qemuIo: have('qemu-io', ['--version']),
  qemuImg: have('qemu-img', ['--version']),
  nbdsh: have('nbdsh', ['-c', 'pass']),
};
const skipUnless = (ok: boolean, what: string): string | false => (ok ? false : missing(what));
const run = runTool;

const uri = (path: string, exp: string): string => `nbd+unix:///${exp}?socket=${path}`;

describe('NBD server: the real tools', () => {
  it('nbdinfo --json shows size, block sizes and flags; --list shows every export', { ...T, skip: skipUnless(HAVE.nbdinfo, 'nbdinfo') }, async () => {
    await withServer(new MemBackend(EXPORTS()), async (_s, path) => {
      const r = await run('nbdinfo', ['--json', uri(path, 'sda')]);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout) as { protocol: string; exports: Record<string, unknown>[] };
      assert.equal(j.protocol, 'newstyle-fixed');
      const e = j.exports[0]!;
      assert.equal(e['export-name'], 'sda');
      assert.equal(e['export-size'], 16 * MiB);
      assert.equal(e['block_size_minimum'], 4096);
      assert.equal(e['block_size_preferred'], 4096);
      assert.equal(e['block_size_maximum'], 32 * MiB);
      assert.equal(e['description'], 'SSD a (4 KiB blocks)');
      for (const k of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_multi_conn']) assert.equal(e[k], true, k);
      assert.equal(e['is_read_only'], false);
      const ro = JSON.parse((await run('nbdinfo', ['--json', uri(path, 'ro')])).stdout) as { exports: Record<string, unknown>[] };
      assert.equal(ro.exports[0]!['is_read_only'], true);
      const l = await run('nbdinfo', ['--json', '--list', `nbd+unix://?socket=${path}`]);
      assert.equal(l.code, 0, l.stderr);
      const names = (JSON.parse(l.stdout) as { exports: { 'export-name': string; 'export-size': number }[] }).exports.map((x) => [x['export-name'], x['export-size']]);
      assert.deepEqual(names, [
        ['sda', 16 * MiB],
        ['sdb', 16 * MiB],
        ['ro', 1 * MiB],
        ['small', 1 * MiB],
      ]);
      const m = await run('nbdinfo', ['--map', uri(path, 'sdb')]);
      assert.equal(m.code, 0, m.stderr);
      assert.match(m.stdout, /^\s*0\s+16777216\s+0\s+data\s*$/);
    });
  });

  it('qemu-io writes and reads at unaligned and edge offsets (read-modify-write by the client); beyond the end fails, nothing written', { ...T, skip: skipUnless(HAVE.qemuIo, 'qemu-io') }, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (s, path) => {
      const size = 16 * MiB;
      const io = (...cmds: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => run('qemu-io', ['-f', 'raw', uri(path, 'sda'), ...cmds.flatMap((c) => ['-c', c])]);
      let r = await io('write -P 0x5a 1000 3000', 'read -P 0x5a 1000 3000', 'read -P 0 0 1000', 'read -P 0 4000 96');
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.doesNotMatch(r.stdout, /fail|mismatch/i);
      const mem = be.data.get('sda')!;
      assert.ok(mem.subarray(1000, 4000).every((x) => x === 0x5a) && mem.subarray(0, 1000).every((x) => x === 0) && mem.subarray(4000, 8192).every((x) => x === 0));
      // Edges: the last bytes (unaligned start inside the last block), a span across a block boundary.
      r = await io(`write -P 0x33 ${size - 1000} 1000`, `read -P 0x33 ${size - 1000} 1000`, 'write -P 0x44 8000 300', 'read -P 0x44 8000 300');
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.doesNotMatch(r.stdout, /fail|mismatch/i);
      assert.ok(mem.subarray(size - 1000).every((x) => x === 0x33));
      assert.ok(mem.subarray(8000, 8300).every((x) => x === 0x44));
      // Every request that reached the server was aligned to 4096 (qemu honours the minimum block size).
      assert.equal(s.counters['errors.EINVAL'], 0);
      // Beyond the end: qemu refuses (its block layer knows the size), and nothing is written.
      const writesBefore = be.calls.write;
      r = await io(`write -P 0x66 ${size - 1000} 2000`);
      assert.match(r.stdout + r.stderr, /write failed/);
      r = await io(`read ${size} 512`);
      assert.match(r.stdout + r.stderr, /read failed/);
      assert.equal(be.calls.write, writesBefore);
      assert.ok(mem.subarray(size - 1000).every((x) => x === 0x33));
    });
  });

  it('nbdcopy from an nbdkit pattern export onto an export, and back to a file: verified; qemu-img compare agrees', { timeout: 60_000, skip: skipUnless(HAVE.nbdcopy && HAVE.nbdkit && HAVE.qemuImg, 'nbdcopy, nbdkit or qemu-img') }, async () => {
    const be = new MemBackend(EXPORTS());
    const dir = mkdtempSync(join(tmpdir(), 'nbd-copy-'));
    try {
      await withServer(be, async (s, path) => {
        const dst = uri(path, 'sdb');
        let r = await run('nbdkit', ['-U', '-', 'pattern', '16M', '--run', `nbdcopy --flush "$uri" '${dst}'`], 60_000);
        assert.equal(r.code, 0, r.stderr);
        const mem = Buffer.from(be.data.get('sdb')!);
        for (let off = 0; off < 16 * MiB; off += 8) if (mem.readBigUInt64BE(off) !== BigInt(off)) assert.fail(`pattern mismatch at ${off}`);
        assert.ok(be.flushes >= 1, 'nbdcopy --flush flushes at the end');
        // Export -> file, and the file is the same bytes.
        const file = join(dir, 'out.img');
        r = await run('nbdcopy', [dst, file], 60_000);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(sameBytes(readFileSync(file), mem));
        // A raw image onto sda with qemu-img convert, then qemu-img compare: identical.
        const img = join(dir, 'in.img');
        writeFileSync(img, u8(pattern(16 * MiB, 5)));
        r = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', img, uri(path, 'sda')], 60_000);
        assert.equal(r.code, 0, r.stderr);
        r = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', img, uri(path, 'sda')], 60_000);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.ok(sameBytes(be.data.get('sda')!, pattern(16 * MiB, 5)));
        assert.ok(s.counters.bytesWritten >= 32 * MiB);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('nbdsh: unaligned and out-of-range requests get the protocol errors; flush and FUA succeed', { ...T, skip: skipUnless(HAVE.nbdsh, 'nbdsh (python3-libnbd)') }, async () => {
    const be = new MemBackend(EXPORTS());
    await withServer(be, async (s, path) => {
      const script = `
import json
h = nbd.NBD()
h.set_strict_mode(0)  # let the requests reach the server: libnbd would refuse them itself
h.connect_uri(${JSON.stringify(uri(path, 'sda'))})
size = h.get_size()
out = {"size": size, "min": h.get_block_size(nbd.SIZE_MINIMUM), "multi": h.can_multi_conn()}
def t(name, f):
    try:
        f()
        out[name] = "ok"
    except nbd.Error as e:
        out[name] = e.errno
t("unaligned_read", lambda: h.pread(100, 10))
t("unaligned_write", lambda: h.pwrite(b"x" * 100, 4096))
t("oob_read", lambda: h.pread(4096, size))
t("oob_write", lambda: h.pwrite(b"x" * 4096, size))
t("oob_trim", lambda: h.trim(4096, size))
t("oob_zero", lambda: h.zero(4096, size))
t("write_fua", lambda: h.pwrite(b"y" * 4096, 0, nbd.CMD_FLAG_FUA))
t("flush", lambda: h.flush())
out["readback"] = h.pread(4096, 0) == b"y" * 4096
h.shutdown()
print(json.dumps(out))
`;
      const r = await run('nbdsh', ['-c', script]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), {
        size: 16 * MiB,
        min: 4096,
        multi: true,
        unaligned_read: 'EINVAL',
        unaligned_write: 'EINVAL',
        oob_read: 'EINVAL',
        oob_write: 'ENOSPC',
        oob_trim: 'EINVAL',
        oob_zero: 'ENOSPC',
        write_fua: 'ok',
        flush: 'ok',
        readback: true,
      });
      assert.equal(be.calls.write, 1);
      assert.ok(be.flushes >= 1);
      assert.ok(be.data.get('sda')!.subarray(4096).every((x) => x === 0), 'nothing written but the FUA write');
      assert.equal(s.counters['errors.EINVAL'], 4);
      assert.equal(s.counters['errors.ENOSPC'], 2);
    });
  });
});

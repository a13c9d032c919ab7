/**
 * NBD over TCP with TLS-PSK (src/live/nbd-tls.ts, nbd-server.ts): the key file, a plain client refused
 * with NBD_REP_ERR_TLS_REQD, and the real clients (nbdinfo, nbdcopy from libnbd; qemu-img's
 * tls-creds-psk) over TLS, skipped with the reason when a tool is missing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNbdServer, type NbdBackend, type NbdExport, type NbdServer } from '../../src/live/nbd-server.js';
import { defaultPskIdentity, ensurePskFile, parsePskFile } from '../../src/live/nbd-tls.js';
import { have, missing, runTool } from '../helpers/nbd-tools.js';

const MiB = 1 << 20;
const T = { timeout: 60_000 };
const IHAVEOPT = 0x49484156454f5054n;
const OPT = { ABORT: 2, LIST: 3, STARTTLS: 5, GO: 7 };
const REP = { ACK: 1, ERR_TLS_REQD: 0x8000_0005 };

/** A 4 MiB export in memory. */
class Mem implements NbdBackend {
  readonly bytes = new Uint8Array(4 * MiB);
  exports(): NbdExport[] {
    return [{ name: 'sda', sizeBytes: this.bytes.length, blockBytes: 512 }];
  }
  async read(_e: string, off: number, len: number): Promise<Uint8Array> {
    return this.bytes.slice(off, off + len);
  }
  async write(_e: string, off: number, data: readonly Uint8Array[]): Promise<void> {
    for (const d of data) {
      this.bytes.set(d, off);
      off += d.length;
    }
  }
  async flush(): Promise<void> {}
  async trim(): Promise<void> {}
  async writeZeroes(_e: string, off: number, len: number): Promise<void> {
    this.bytes.fill(0, off, off + len);
  }
}

/** A TLS server on loopback TCP with a fresh key file in a private temp dir; cleaned up after `fn`. */
async function withTlsServer(fn: (s: NbdServer, pskFile: string, dir: string, be: Mem) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nbd-tls-'));
  const pskFile = join(dir, 'nbd.psk');
  const be = new Mem();
  const s = await startNbdServer({ backend: be, socketPath: join(dir, 'nbd.sock'), tcp: { host: '127.0.0.1', port: 0 }, tls: { keys: ensurePskFile(pskFile).keys }, handshakeTimeoutMs: 5_000 });
  try {
    await fn(s, pskFile, dir, be);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** Exactly n bytes from a socket, in order (rejects on close or after 5 s). */
function reader(sock: net.Socket): (n: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0);
  let closed = false;
  let wake: (() => void) | null = null;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([u8(buf), u8(d)]);
    wake?.();
  });
  sock.on('close', () => {
    closed = true;
    wake?.();
  });
  sock.on('error', () => {});
  return async (n) => {
    const deadline = Date.now() + 5_000;
    while (buf.length < n) {
      if (closed) throw new Error('closed');
      if (Date.now() > deadline) throw new Error(`no ${n} bytes within 5 s`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
}

function option(opt: number, data = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(16 + data.length);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(opt, 8);
  b.writeUInt32BE(data.length, 12);
  b.set(data, 16);
  return b;
}

async function optReply(recv: (n: number) => Promise<Buffer>): Promise<{ opt: number; type: number; message: string }> {
  const h = await recv(20);
  const data = await recv(h.readUInt32BE(16));
  return { opt: h.readUInt32BE(8), type: h.readUInt32BE(12), message: data.toString() };
}

describe('NBD TLS-PSK: the key file', () => {
  it('is made once, 0600, as identity:64 hex digits, and reused; bad files are refused naming the line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nbd-psk-'));
    try {
      const f = join(dir, 'nbd.psk');
      const a = ensurePskFile(f);
      assert.equal(a.created, true);
      assert.equal(statSync(f).mode & 0o777, 0o600);
      assert.match(readFileSync(f, 'utf8'), new RegExp(`^${defaultPskIdentity()}:[0-9a-f]{64}\\n$`));
      const b = ensurePskFile(f);
      assert.equal(b.created, false);
      assert.deepEqual([...b.keys], [...a.keys]);
      assert.throws(() => parsePskFile('alice\n', 'F'), /F line 1: not 'identity:hexkey'/);
      assert.throws(() => parsePskFile('alice:abcd\n', 'F'), /F line 1: the key of 'alice' is not hex of at least 16 bytes/);
      assert.throws(() => parsePskFile('# nothing\n', 'F'), /no 'identity:hexkey' line/);
      assert.equal(parsePskFile(`a:${'00'.repeat(16)}\nb:${'11'.repeat(32)}\n`, 'F').size, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TCP without tls is refused unless tcpInsecure says so', async () => {
    await assert.rejects(startNbdServer({ backend: new Mem(), tcp: { host: '127.0.0.1', port: 0 } }), /TCP needs tls \(PSK keys\) or tcpInsecure: true/);
  });
});

describe('NBD TLS-PSK: the server', () => {
  it('a plain client gets NBD_REP_ERR_TLS_REQD (with a message) to every option but ABORT; the Unix socket stays plain', T, async () => {
    await withTlsServer(async (s, _f, dir) => {
      const sock = net.connect({ host: '127.0.0.1', port: s.tcp!.port });
      const recv = reader(sock);
      try {
        await recv(18);
        sock.write(u8(Buffer.from([0, 0, 0, 3])));
        sock.write(u8(option(OPT.LIST)));
        const r = await optReply(recv);
        assert.deepEqual([r.opt, r.type], [OPT.LIST, REP.ERR_TLS_REQD]);
        assert.match(r.message, /TLS is required/);
        sock.write(u8(option(OPT.ABORT)));
        assert.equal((await optReply(recv)).type, REP.ACK);
        assert.equal(s.counters.tlsRequiredRefusals, 1);
      } finally {
        sock.destroy();
      }
      const u = net.connect({ path: join(dir, 'nbd.sock') });
      const urecv = reader(u);
      try {
        await urecv(18);
        u.write(u8(Buffer.from([0, 0, 0, 3])));
        u.write(u8(option(OPT.LIST)));
        assert.equal((await optReply(urecv)).type, 2); // NBD_REP_SERVER: no TLS asked for
      } finally {
        u.destroy();
      }
    });
  });

  const libnbd = have('nbdinfo', ['--version']) && have('nbdcopy', ['--version']);
  it('nbdinfo and nbdcopy over nbds:// with tls-psk-file; a wrong key and plain nbd:// are refused', { ...T, skip: libnbd ? false : missing('nbdinfo/nbdcopy') }, async () => {
    await withTlsServer(async (s, pskFile, dir, be) => {
      // The URI's user is the TLS identity (libnbd's default is the login name, which a session without a terminal has not).
      const uri = `nbds://${defaultPskIdentity()}@127.0.0.1:${s.tcp!.port}/sda?tls-psk-file=${pskFile}`;
      const info = await runTool('nbdinfo', ['--json', uri]);
      assert.equal(info.code, 0, info.stderr);
      assert.equal(JSON.parse(info.stdout).exports[0]['export-size'], 4 * MiB);
      assert.ok(s.counters.tlsHandshakes! >= 1);

      const src = join(dir, 'in.bin');
      const out = join(dir, 'out.bin');
      const data = Buffer.alloc(4 * MiB);
      for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 12)) & 0xff;
      writeFileSync(src, u8(data));
      const up = await runTool('nbdcopy', [src, uri]);
      assert.equal(up.code, 0, up.stderr);
      assert.ok(Buffer.from(be.bytes).equals(u8(data)), 'the export holds what nbdcopy wrote');
      const down = await runTool('nbdcopy', [uri, out]);
      assert.equal(down.code, 0, down.stderr);
      assert.ok(readFileSync(out).equals(u8(data)), 'nbdcopy read it back');

      const wrong = join(dir, 'wrong.psk');
      writeFileSync(wrong, `${defaultPskIdentity()}:${'ab'.repeat(32)}\n`, { mode: 0o600 });
      const bad = await runTool('nbdinfo', [`nbds://${defaultPskIdentity()}@127.0.0.1:${s.tcp!.port}/sda?tls-psk-file=${wrong}`]);
      assert.notEqual(bad.code, 0, 'a wrong key must not connect');
      const plain = await runTool('nbdinfo', [`nbd://127.0.0.1:${s.tcp!.port}/sda`]);
      assert.notEqual(plain.code, 0, 'plain TCP must not connect');
      assert.ok(s.counters.tlsFailed! >= 1);
      assert.ok(s.counters.tlsRequiredRefusals! >= 1);
    });
  });

  const qemu = have('qemu-img', ['--version']);
  it('qemu-img over TLS-PSK (tls-creds-psk with keys.psk)', { ...T, skip: qemu ? false : missing('qemu-img') }, async () => {
    await withTlsServer(async (s, pskFile, dir, be) => {
      be.bytes.fill(0x5a, 0, MiB);
      const creds = join(dir, 'creds');
      mkdirSync(creds, { mode: 0o700 });
      copyFileSync(pskFile, join(creds, 'keys.psk'));
      const obj = `tls-creds-psk,id=tls0,endpoint=client,dir=${creds},username=${defaultPskIdentity()}`;
      const img = `driver=nbd,host=127.0.0.1,port=${s.tcp!.port},export=sda,tls-creds=tls0`;
      const info = await runTool('qemu-img', ['info', '--output=json', '--object', obj, '--image-opts', img]);
      assert.equal(info.code, 0, info.stderr);
      assert.equal(JSON.parse(info.stdout)['virtual-size'], 4 * MiB);
      const out = join(dir, 'q.raw');
      const conv = await runTool('qemu-img', ['convert', '-O', 'raw', '--object', obj, '--image-opts', img, out]);
      assert.equal(conv.code, 0, conv.stderr);
      assert.ok(readFileSync(out).equals(u8(Buffer.from(be.bytes))));
    });
  });
});

/**
 * The live fabric's block devices over NBD, used by the real tools (issue "NBD"): `dconnect up` serves
 * sda and sdb on nbd.sock; nbdinfo, qemu-img, nbdcopy, qemu-io and nbdsh work against them unmodified,
 * every request going through the modelled host (the host bridge's counters show it); BLOCK_STATUS
 * reports the drive files' holes. The nbdsh suite
 * runs against nbdkit's memory plugin (the reference, with the same minimum block size) and against
 * the fabric, and the outcomes must be the same. Skipped, saying why, when the Debian tools are absent
 * (.ci/run installs them).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../../src/live/control-http.js';
import { have, missing, runTool } from '../helpers/nbd-tools.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const MiB = 1 << 20;
const SIZE = 16 * MiB;
const TOOLS = ['nbdinfo', 'nbdcopy', 'nbdkit', 'qemu-img', 'qemu-io'].every((t) => have(t, ['--version'])) && have('nbdsh', ['-c', 'pass']);
const SKIP = TOOLS ? false : missing('the NBD tools are');
const run = (cmd: string, args: string[], timeoutMs = 60_000) => runTool(cmd, args, timeoutMs);

function fileSha(path: string, offset: number, length: number): string {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(length);
    readSync(fd, b, 0, length, offset);
    return createHash('sha256').update(b).digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** The checks of the nbdsh suite; prints one JSON object of outcomes (errno names or "ok"). */
const NBDSH_SUITE = (uri: string) => `
import json
h = nbd.NBD()
h.set_strict_mode(0)  # let bad requests reach the server: libnbd would refuse them itself
h.connect_uri(${JSON.stringify(uri)})
size = h.get_size()
out = {"min": h.get_block_size(nbd.SIZE_MINIMUM), "flush": h.can_flush(), "fua": h.can_fua(), "multi": h.can_multi_conn(), "trim": h.can_trim(), "zero": h.can_zero()}
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
t("last_block", lambda: h.pwrite(b"e" * 512, size - 512))
t("write_fua", lambda: h.pwrite(b"y" * 4096, 8192, nbd.CMD_FLAG_FUA))
t("write_then_flush", lambda: (h.pwrite(b"z" * 8192, 65536), h.flush()))
out["readback"] = h.pread(4096, 8192) == b"y" * 4096 and h.pread(8192, 65536) == b"z" * 8192 and h.pread(512, size - 512) == b"e" * 512
t("zero", lambda: h.zero(4096, 65536))
out["zeroed"] = h.pread(4096, 65536) == bytes(4096)
h.shutdown()
print(json.dumps(out, sort_keys=True))
`;

describe('NBD exports of the live fabric, used by the real tools', { timeout: 300_000, skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-nbd-'));
  const state = join(dir, 's');
  const sock = join(state, 'nbd.sock');
  const uri = (exp: string) => `nbd+unix:///${exp}?socket=${sock}`;
  const drive = (slot: number) => join(state, 'drives', `box0.slot${slot}.img`);
  const dconnect = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });

  before(() => {
    const r = dconnect(['up', '--state', state, '--topology', 'paper-2012-live', '--set', `ssd.capacityBytes=${SIZE}`, '--pace', 'none']);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('nbdinfo --json shows every export with its size, block sizes and flags', async () => {
    const list = await run('nbdinfo', ['--list', '--json', `nbd+unix:///?socket=${sock}`]);
    assert.equal(list.code, 0, list.stderr);
    const exports = (JSON.parse(list.stdout) as { exports: Record<string, unknown>[] }).exports;
    assert.deepEqual(
      exports.map((e) => [e['export-name'], e['export-size'], e['block_size_minimum'], e['can_flush'], e['can_fua'], e['can_trim'], e['can_zero'], e['can_multi_conn'], e['is_read_only']]),
      [
        ['sda', SIZE, 512, true, true, true, true, true, false],
        ['sdb', SIZE, 512, true, true, true, true, true, false],
      ],
    );
  });

  it('nbdinfo --map shows never-written ranges as holes and what was written as data (base:allocation from the box\'s drive file)', async () => {
    const w = await run('qemu-io', ['-f', 'raw', uri('sda'), '-c', `write -P 0x11 ${4 * MiB} ${MiB}`]);
    assert.equal(w.code, 0, w.stderr);
    const map = async (exp: string) => {
      const r = await run('nbdinfo', ['--map', '--json', uri(exp)]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { offset: number; length: number; type: number; description: string }[]).map((e) => [e.offset, e.length, e.description]);
    };
    assert.deepEqual(await map('sda'), [
      [0, 4 * MiB, 'hole,zero'],
      [4 * MiB, MiB, 'data'],
      [5 * MiB, SIZE - 5 * MiB, 'hole,zero'],
    ]);
    assert.deepEqual(await map('sdb'), [[0, SIZE, 'hole,zero']]);
  });

  it('qemu-img convert of a raw image onto sdb, then qemu-img compare: identical; the bytes are in the drive file and crossed the modelled host link', async () => {
    const img = join(dir, 'image.raw');
    const data = new Uint8Array(randomBytes(SIZE));
    writeFileSync(img, data);
    const c = await controlRequest<{ trace: Record<string, Record<string, number>> }>({ socketPath: join(state, 'host.sock') }, 'GET', '/counters');
    const before = c.trace['hostLink.upstream'].payloadBytes;
    const conv = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', img, uri('sdb')], 120_000);
    assert.equal(conv.code, 0, conv.stderr);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', img, uri('sdb')]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
    assert.match(cmp.stdout, /Images are identical/);
    assert.equal(fileSha(drive(1), 0, SIZE), createHash('sha256').update(data).digest('hex'));
    const after = (await controlRequest<{ trace: Record<string, Record<string, number>> }>({ socketPath: join(state, 'host.sock') }, 'GET', '/counters')).trace['hostLink.upstream'].payloadBytes;
    assert.ok(after - before >= SIZE, `${after - before} B went up the host link: the drive read the data out of host memory`);
  });

  it('nbdcopy from an nbdkit pattern export onto sdb, then from sdb to sda: verified in the drive files', async () => {
    const r = await run('nbdkit', ['-U', '-', 'pattern', String(SIZE), '--run', `nbdcopy --flush "$uri" '${uri('sdb')}'`], 120_000);
    assert.equal(r.code, 0, r.stderr);
    // nbdkit's pattern: every 8-byte word holds its own offset, big-endian.
    const want = new Uint8Array(SIZE);
    const dv = new DataView(want.buffer);
    for (let off = 0; off < SIZE; off += 8) dv.setBigUint64(off, BigInt(off));
    assert.equal(fileSha(drive(1), 0, SIZE), createHash('sha256').update(want).digest('hex'));
    const copy = await run('nbdcopy', ['--flush', uri('sdb'), uri('sda')], 120_000);
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal(fileSha(drive(0), 0, SIZE), fileSha(drive(1), 0, SIZE));
  });

  it('qemu-io reads and writes at unaligned and edge offsets', async () => {
    const r = await run('qemu-io', ['-f', 'raw', uri('sda'), '-c', 'write -P 0x5a 1000 3000', '-c', 'read -P 0x5a 1000 3000', '-c', `write -P 0x33 ${SIZE - 700} 700`, '-c', `read -P 0x33 ${SIZE - 700} 700`, '-c', 'read -P 0x5a 1000 1']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /Pattern verification failed|error/i);
    assert.equal((r.stdout.match(/^read \d+\/\d+ bytes/gm) ?? []).length, 3);
    const fd = openSync(drive(0), 'r');
    const b = new Uint8Array(3000);
    readSync(fd, b, 0, 3000, 1000);
    closeSync(fd);
    assert.ok(b.every((x) => x === 0x5a), 'the drive file holds what qemu-io wrote');
  });

  it('the nbdsh suite gives the same outcomes on the fabric as on nbdkit memory (the reference)', async () => {
    // One script for both, reading the URI from the environment (nbdkit --run sets $uri for the reference).
    const script = join(dir, 'suite.py');
    writeFileSync(script, NBDSH_SUITE('__URI__').replace('"__URI__"', 'os.environ["NBD_URI"]').replace('import json', 'import json, os'));
    const reference = await run('nbdkit', ['-U', '-', '--filter=blocksize-policy', 'memory', String(SIZE), 'blocksize-minimum=512', 'blocksize-error-policy=error', '--run', `NBD_URI="$uri" nbdsh -c 'exec(open("${script}").read())'`]);
    assert.equal(reference.code, 0, reference.stderr);
    const ours = await runTool('nbdsh', ['-c', `exec(open("${script}").read())`], 60_000, { NBD_URI: uri('sdb') });
    assert.equal(ours.code, 0, ours.stderr);
    const a = JSON.parse(reference.stdout.trim().split('\n').pop()!);
    const b = JSON.parse(ours.stdout.trim().split('\n').pop()!);
    assert.deepEqual(b, a);
    assert.equal(b.unaligned_read, 'EINVAL');
    assert.equal(b.oob_write, 'ENOSPC');
    assert.equal(b.readback, true);
  });
});

/**
 * Issue 21, "What a new user trips over": careless input gets a clear message, exit 2 and nothing
 * written, before any work; what is printed can be pasted back. Every command runs with a time limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withState, liveDevicesText, statusText } from '../../src/cli/live-format.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Refused as the README promises: exit 2, a DconnectError line, no stack, nothing on stdout. */
function refused(r: ReturnType<typeof run>, code: string, mentions: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`dconnect: error \\[${code}\\]`));
  assert.match(r.stderr, mentions);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stdout, '');
}

test('sweep with no --param is refused before it runs a point', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-ux-'));
  try {
    const r = run('sweep', '--out', join(dir, 'x'), '--size', '1MiB');
    refused(r, 'BAD_PARAM', /at least one --param/);
    assert.doesNotMatch(r.stderr, /sweep: \[/, 'no point ran');
    assert.equal(existsSync(join(dir, 'x')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('output paths are checked before the work: --pcap in a missing directory, --out under a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-ux-'));
  try {
    const pcap = run('copy', 'sda', 'sdb', '--length', '1MiB', '--via', 'host', '--capture', 'host', '--pcap', join(dir, 'missing', 'x.pcap'));
    refused(pcap, 'BAD_OPTION', /--pcap .*does not exist/);
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    const sweep = run('sweep', '--param', 'depth=1,2', '--size', '1MiB', '--out', join(file, 'x'));
    refused(sweep, 'BAD_OPTION', /--out .*is not a directory/);
    assert.doesNotMatch(sweep.stderr, /sweep: \[/, 'no point ran');
    refused(run('repro', '--only', 'fig6', '--size', '1MiB', '--out', file), 'BAD_OPTION', /--out .*exists and is not a directory/);
    refused(run('merge', join(dir, 'none.json'), '--out', join(file, 'y')), 'BAD_OPTION', /--out/);
    refused(run('copy', 'sda', 'sdb', '--length', '1MiB', '--capture', 'host', '--pcap', dir), 'BAD_OPTION', /--pcap .*is a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a length too large says so, with the limit', () => {
  refused(run('copy', 'sda', 'sdb', '--length', '9999999999999999999999'), 'BAD_SIZE', /too large: at most 9007199254740991 bytes/);
});

test('a copy prints its ends as they were given (sda:1GiB, not bytes) and which host ran it', () => {
  const r = run('copy', 'sda:1GiB', 'sdb:4KiB', '--length', '1MiB');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^direct move sda:1GiB -> sdb:4KiB, 1 MiB .* run by host, host link x8$/m);
});

test('a closed stdout ends the command quietly (no EPIPE stack)', async () => {
  const child = spawn(process.execPath, [CLI, 'devices'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // as `| head -0` would: the reader is gone before the first write
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (c) => (clearTimeout(t), resolve(c)));
  });
  assert.doesNotMatch(stderr, /EPIPE|\n\s+at /, stderr);
  assert.equal(code, 0);
});

test('hints carry the --state given, so they work when pasted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-ux-'));
  try {
    const state = join(dir, 'st');
    const r = run('devices', '--live', '--state', state);
    refused(r, 'NOT_RUNNING', new RegExp(`dconnect up --state ${state.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.equal(withState('dconnect copy --resume j6 --live finishes it', 'my state'), "dconnect copy --resume j6 --live --state 'my state' finishes it");
    assert.equal(withState('dconnect status shows the nodes; dconnect up restarts stopped ones', '/s'), 'dconnect status --state /s shows the nodes; dconnect up --state /s restarts stopped ones');
    assert.equal(withState('dconnect copy --resume j6 --live finishes it', '.dconnect'), 'dconnect copy --resume j6 --live finishes it', 'the default needs no --state');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('status rounds its lag; devices --live is a table with a header row and aligned columns', () => {
  const text = statusText(
    { root: '/s', topology: 'paper-2012-live', pace: 'none', dilation: 1 },
    [{ name: 'box0', role: 'box', running: true, pid: 7, udp: { host: '127.0.0.1', port: 5000 }, control: null, report: { lag: { maxMs: 20.04, p99Ms: 12.738610569999764 } } }],
    { epoch: 1, booted: true, events: 10, simulatedSeconds: 1, lag: { maxMs: 3.33333, p99Ms: 1.0000001 } },
    [{ id: 'j1', state: 'done', src: 'sda', dst: 'sdb', srcOffset: 1 << 30, dstOffset: 4096, lengthBytes: 1 << 20, bytesDone: 1 << 20 }],
  );
  assert.match(text, /lag max 20\.0 ms, p99 <= 12\.7 ms/);
  assert.match(text, /lag max 3\.3 ms, p99 <= 1\.0 ms/);
  assert.match(text, /job j1: done, sda:1GiB -> sdb:4KiB, 1 MiB of 1 MiB/);
  const table = liveDevicesText({
    devices: [
      { kind: 'ssd', name: 'sda', serial: 'S1', capacityBytes: 256e9, box: 'box0', slot: 0, bdf: '01:00.0', bar0: 0 },
      { kind: 'dc-buffer', name: 'dcbuf0', capacityBytes: 1 << 20, box: 'box0', slot: 2, bdf: '03:00.0', bar0: 0 },
      { kind: 'nic', name: 'nic0', mac: '02:00:00:00:00:01', capacityBytes: 0, box: 'box0', slot: 3, bdf: '04:00.0', bar0: 0 },
      // A kind this client does not know (a newer host's) still gets its row.
      { kind: 'gpu', name: 'gpu0', capacityBytes: 1 << 30, box: 'box0', slot: 4, bdf: '05:00.0', bar0: 0 },
    ],
  }).split('\n');
  assert.match(table[0], /^NAME\s+KIND\s+BOX\/SLOT\s+BDF\s+CAPACITY\s+SERIAL$/);
  const col = (h: string) => table[0].indexOf(h);
  for (const row of table.slice(1)) assert.equal(row.indexOf('box0'), col('BOX/SLOT'), row);
  assert.match(table[1], /^sda\s+ssd\s+box0\/slot0\s+01:00\.0\s+256 GB\s+S1$/);
  assert.match(table[2], /^dcbuf0\s+dc-buffer\s+box0\/slot2\s+03:00\.0\s+1 MiB\s+-$/);
  assert.match(table[3], /^nic0\s+nic\s+box0\/slot3\s+04:00\.0\s+-\s+MAC 02:00:00:00:00:01$/);
  assert.match(table[4], /^gpu0\s+gpu\s+box0\/slot4\s+05:00\.0\s+1 GiB\s+-$/);
});

test('off a terminal, a fast copy\'s progress lines end at 100%, not where the fast fidelity jumped', () => {
  const r = run('copy', 'sda', 'sdb', '--length', '64MiB');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('copy: '));
  assert.ok(lines.length > 0, r.stderr);
  assert.equal(lines.at(-1), `copy: 100% (${64 << 20}/${64 << 20} bytes)`);
});

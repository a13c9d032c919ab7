import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DconnectError } from '../../src/core/errors.js';
import { DEFAULT_STATE_DIR, isAlive, MAX_SOCKET_PATH_BYTES, readKeyFile, StateDir, type NodeRecord } from '../../src/live/state-dir.js';

const T = { timeout: 10_000 };

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'dc-state-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The pid of a process that has exited and been reaped (spawnSync waits for it). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', ''], { timeout: 5_000 });
  assert.equal(r.status, 0);
  return r.pid!;
}

function record(name: string, pid: number, role: NodeRecord['role'] = 'box'): NodeRecord {
  return { name, role, pid, udp: { host: '127.0.0.1', port: 40000 }, startedAt: new Date(0).toISOString(), topology: 'paper-2012', epoch: 3 };
}

function codeOf(code: string, message?: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof DconnectError && e.code === code && (!message || message.test(e.message));
}

describe('StateDir: the live fabric state directory', () => {
  it('lays out the folders and paths under an absolute root', T, () =>
    withDir((dir) => {
      assert.equal(DEFAULT_STATE_DIR, '.dconnect');
      const s = new StateDir(join(dir, 'st'));
      s.ensure();
      s.ensure(); // idempotent
      for (const sub of ['nodes', 'logs', 'drives', 'jobs']) assert.ok(statSync(join(dir, 'st', sub)).isDirectory(), sub);
      assert.equal(statSync(join(dir, 'st')).mode & 0o777, 0o700);
      assert.equal(s.drivePath('box0-slot1'), join(dir, 'st', 'drives', 'box0-slot1.img'));
      assert.equal(s.logPath('box0'), join(dir, 'st', 'logs', 'box0.log'));
      assert.equal(s.nodeRecordPath('host'), join(dir, 'st', 'nodes', 'host.json'));
      assert.equal(s.jobsDir, join(dir, 'st', 'jobs'));
      assert.equal(s.controlSocketPath, join(dir, 'st', 'host.sock'));
      assert.equal(new StateDir('rel').root, join(process.cwd(), 'rel'));
      assert.throws(() => s.drivePath('../x'), codeOf('STATE_PATH'));
      assert.throws(() => s.nodeRecordPath('a/b'), codeOf('STATE_PATH'));
    }),
  );

  it('is private, always: a pre-existing 0755 directory with 0644 files ends up 0700 with 0600 files; a symlinked root is refused', T, () =>
    withDir((dir) => {
      const root = join(dir, 'st');
      mkdirSync(join(root, 'drives'), { recursive: true, mode: 0o755 });
      chmodSync(root, 0o755);
      chmodSync(join(root, 'drives'), 0o755);
      writeFileSync(join(root, 'drives', 'box0-slot0.img'), 'bytes', { mode: 0o644 });
      writeFileSync(join(root, 'epoch'), '3\n', { mode: 0o644 });
      const s = new StateDir(root);
      s.ensure();
      for (const d of [root, ...['nodes', 'logs', 'drives', 'jobs', 'captures'].map((x) => join(root, x))]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
      assert.equal(statSync(join(root, 'drives', 'box0-slot0.img')).mode & 0o777, 0o600);
      assert.equal(statSync(join(root, 'epoch')).mode & 0o777, 0o600);
      const token = s.controlToken();
      assert.match(token, /^[0-9a-f]{64}$/);
      assert.equal(s.controlToken(), token, 'kept across calls');
      assert.equal(statSync(s.controlTokenPath).mode & 0o777, 0o600);
      symlinkSync(root, join(dir, 'link'));
      assert.throws(() => new StateDir(join(dir, 'link')).ensure(), codeOf('STATE_PATH'));
    }),
  );

  it('names captures as files in captures/, never as paths', T, () =>
    withDir((dir) => {
      const s = new StateDir(join(dir, 'st'));
      assert.equal(s.capturePath('move.pcap'), join(dir, 'st', 'captures', 'move.pcap'));
      assert.equal(s.capturePath('captures/move.pcap'), join(dir, 'st', 'captures', 'move.pcap'));
      for (const bad of ['/etc/passwd', '../x.pcap', 'a/b.pcap', '.hidden', 'captures/../x', '', 'x'.repeat(200)]) assert.throws(() => s.capturePath(bad), codeOf('BAD_REQUEST'), bad);
    }),
  );

  it('refuses a socket path too long for a Unix socket, with a hint', T, () =>
    withDir((dir) => {
      const long = join(dir, 'x'.repeat(MAX_SOCKET_PATH_BYTES));
      assert.throws(
        () => new StateDir(long).controlSocketPath,
        (e) => codeOf('STATE_PATH', /host\.sock is \d+ bytes/)(e) && /shorter --state/.test((e as DconnectError).hint ?? ''),
      );
    }),
  );

  it('writes node records atomically, reads them back sorted, removes them', T, () =>
    withDir((dir) => {
      const s = new StateDir(dir);
      s.ensure();
      assert.equal(s.readNodeRecord('box0'), null);
      const host: NodeRecord = { ...record('host', process.pid, 'host'), control: { socket: s.controlSocketPath, tcp: { host: '127.0.0.1', port: 7000 } } };
      s.writeNodeRecord(record('box0', process.pid));
      s.writeNodeRecord(host);
      s.writeNodeRecord({ ...record('box0', process.pid), epoch: 4 }); // replaced whole
      assert.deepEqual(s.readNodeRecord('host'), host);
      assert.equal(s.readNodeRecord('box0')!.epoch, 4);
      assert.deepEqual(readdirSync(join(dir, 'nodes')).sort(), ['box0.json', 'host.json'], 'no temporary file left behind');
      writeFileSync(join(dir, 'nodes', 'box1.json.123.0.tmp'), '{"half'); // a write in progress is not a record
      assert.deepEqual(s.listNodeRecords().map((r) => r.name), ['box0', 'host']);
      s.removeNodeRecord('box0');
      s.removeNodeRecord('box0');
      assert.deepEqual(s.listNodeRecords().map((r) => r.name), ['host']);
      assert.throws(() => s.writeNodeRecord({ ...record('box0', process.pid), pid: -1 }), codeOf('BAD_STATE', /pid/));
    }),
  );

  it('reports a corrupt record as an error naming the file', T, () =>
    withDir((dir) => {
      const s = new StateDir(dir);
      s.ensure();
      s.writeNodeRecord(record('box0', process.pid));
      const bad = join(dir, 'nodes', 'box1.json');
      writeFileSync(bad, '{"name": "box1", "ro');
      assert.throws(() => s.listNodeRecords(), (e) => codeOf('BAD_STATE', /not JSON/)(e) && (e as Error).message.includes(bad));
      assert.throws(() => s.readNodeRecord('box1'), codeOf('BAD_STATE'));
      writeFileSync(bad, JSON.stringify({ ...record('box1', 1), role: 'switch' }));
      assert.throws(() => s.readNodeRecord('box1'), codeOf('BAD_STATE', /role/));
      writeFileSync(bad, JSON.stringify(record('box2', 1)));
      assert.throws(() => s.readNodeRecord('box1'), codeOf('BAD_STATE', /names node box2/));
    }),
  );

  it('tells live processes from dead ones', T, () =>
    withDir((dir) => {
      const dead = deadPid();
      assert.equal(isAlive(process.pid), true);
      assert.equal(isAlive(dead), false);
      assert.equal(isAlive(0), false, 'pid 0 would address the process group');
      assert.equal(isAlive(-1), false);
      assert.equal(isAlive(1.5), false);
      const s = new StateDir(dir);
      s.ensure();
      s.writeNodeRecord(record('box0', dead));
      s.writeNodeRecord(record('host', process.pid, 'host'));
      assert.deepEqual(s.liveNodes().map((r) => r.name), ['host']);
      assert.deepEqual(s.staleNodes().map((r) => r.name), ['box0']);
    }),
  );

  it('counts epochs from 1, persisted across instances, and refuses a corrupt counter', T, () =>
    withDir((dir) => {
      const s = new StateDir(dir);
      s.ensure();
      assert.equal(s.nextEpoch(), 1);
      assert.equal(s.nextEpoch(), 2);
      assert.equal(new StateDir(dir).nextEpoch(), 3);
      assert.equal(readFileSync(join(dir, 'epoch'), 'utf8'), '3\n');
      writeFileSync(join(dir, 'epoch'), '4294967295\n');
      assert.equal(s.nextEpoch(), 1, 'a u32 wraps past 0');
      writeFileSync(join(dir, 'epoch'), 'seven');
      assert.throws(() => s.nextEpoch(), codeOf('BAD_STATE', /epoch/));
    }),
  );

  it('holds the up lock once: a live holder is ALREADY_RUNNING, a dead one is taken over', T, () =>
    withDir((dir) => {
      const s = new StateDir(dir);
      const lock = join(dir, 'up.lock');
      const release = s.acquireUpLock();
      assert.equal(readFileSync(lock, 'utf8').trim(), String(process.pid));
      assert.throws(
        () => new StateDir(dir).acquireUpLock(),
        (e) => codeOf('ALREADY_RUNNING', new RegExp(`already running in .* \\(pid ${process.pid}\\)`))(e) && /dconnect down/.test((e as DconnectError).hint ?? ''),
      );
      release();
      release(); // idempotent
      assert.equal(existsSync(lock), false);

      writeFileSync(lock, `${process.ppid}\n`); // another live process
      assert.throws(() => s.acquireUpLock(), codeOf('ALREADY_RUNNING', new RegExp(`pid ${process.ppid}`)));

      writeFileSync(lock, `${deadPid()}\n`);
      const again = s.acquireUpLock();
      assert.equal(readFileSync(lock, 'utf8').trim(), String(process.pid), 'a dead holder is replaced');
      writeFileSync(lock, '999999999\n'); // someone else's now: release leaves it
      again();
      assert.equal(readFileSync(lock, 'utf8'), '999999999\n');

      writeFileSync(lock, ''); // a crash before the pid was written
      s.acquireUpLock()();
      assert.equal(existsSync(lock), false);
    }),
  );

  it('the fabric key: made once by the host side (0600, 256 bits), never by a box; a key file others can read, or not a key, is refused', T, () =>
    withDir((dir) => {
      const s = new StateDir(join(dir, 'st'));
      s.ensure();
      assert.throws(() => s.fabricKey(false), codeOf('NO_KEY', /does not exist/));
      const k = s.fabricKey(true);
      assert.equal(k.length, 32);
      assert.equal(statSync(s.fabricKeyPath).mode & 0o777, 0o600);
      assert.deepEqual(s.fabricKey(true), k, 'kept');
      assert.deepEqual(s.fabricKey(false), k);
      const carried = join(dir, 'carried.key');
      writeFileSync(carried, readFileSync(s.fabricKeyPath, 'utf8'), { mode: 0o644 });
      chmodSync(carried, 0o644);
      assert.throws(() => readKeyFile(carried), codeOf('NO_KEY', /mode 0644/));
      chmodSync(carried, 0o600);
      assert.deepEqual(readKeyFile(carried), k);
      writeFileSync(carried, 'not a key\n');
      assert.throws(() => readKeyFile(carried), codeOf('NO_KEY', /64 hex digits/));
      assert.throws(() => readKeyFile(join(dir, 'nowhere.key')), codeOf('NO_KEY', /cannot read/));
    }),
  );
});

/**
 * Two machines, for real (issue 20, item 7): the host node and the box node each in its own network
 * namespace, joined by a veth pair, each with its own address, as the paper's host and I/O box on two
 * machines (no loopback between them). The box has its own state directory and gets the host's fabric
 * key as a copied file (`--key-file`). A direct and a conventional copy verify; datagrams forged from a
 * third namespace are dropped and counted by the box and change nothing.
 *
 * Needs root and `ip netns` (iproute2); skipped with the reason otherwise. Every command has a time
 * limit; the processes (by pid) and the namespaces (by name) are removed whatever happens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileRange, sha, writeRange } from '../helpers/drive-files.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TRANSPORT = fileURLToPath(new URL('../../src/live/udp-transport.js', import.meta.url));
/** Any one command's limit, ms. */
const COMMAND_MS = 60_000;
const MiB = 1 << 20;
/** Names unique to this run (interface names are at most 15 bytes). */
const tag = `${process.pid % 100_000}`;
const NS = { host: `dch${tag}`, box: `dcb${tag}`, other: `dcx${tag}` };
const ADDR = { host: '10.77.1.1', box: '10.77.1.2', boxSide: '10.77.2.2', other: '10.77.2.3' };
const BOX_PORT = 7000;

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: COMMAND_MS });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? `${r.error?.message ?? ''}` };
}

function must(cmd: string, args: string[]): string {
  const r = run(cmd, args);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

/** Why this test cannot run here, or null. */
function unavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'ip netns needs root';
  const probe = `dcp${tag}`;
  const r = run('ip', ['netns', 'add', probe]);
  if (r.status !== 0) return `ip netns add is not allowed here: ${r.stderr.trim() || `exit ${r.status}`}`;
  run('ip', ['netns', 'del', probe]);
  return null;
}

const skip = unavailable();


async function waitFor(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('two machines: host and box in two network namespaces over a veth pair, the key carried as a file', { skip: skip ?? false, timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-netns-'));
  const hostState = join(dir, 'host-machine');
  const boxState = join(dir, 'box-machine');
  const keyCopy = join(dir, 'carried.key');
  const children: ChildProcess[] = [];
  const common = ['--topology', 'paper-2012-live', '--set', `ssd.capacityBytes=${64 * MiB}`, '--pace', 'none'];
  const sdaFile = join(boxState, 'drives', 'box0.slot0.img');
  const sdbFile = join(boxState, 'drives', 'box0.slot1.img');

  const node = (ns: string, args: string[], log: string): ChildProcess => {
    const out = openSync(join(dir, log), 'a', 0o600);
    const c = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'node', ...args, ...common], { stdio: ['ignore', out, out] });
    closeSync(out);
    children.push(c);
    return c;
  };
  const boxRecord = (): { report?: { transport?: Record<string, number> } } | null => {
    const p = join(boxState, 'nodes', 'box0.json');
    return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null;
  };
  const logs = () => ['host.log', 'box.log'].map((f) => (existsSync(join(dir, f)) ? `--- ${f}\n${readFileSync(join(dir, f), 'utf8').slice(-3000)}` : '')).join('\n');

  before(async () => {
    for (const ns of Object.values(NS)) must('ip', ['netns', 'add', ns]);
    // host <-> box, and a third namespace on another link of the box (someone else on the network).
    must('ip', ['link', 'add', `vh${tag}`, 'netns', NS.host, 'type', 'veth', 'peer', 'name', `vb${tag}`, 'netns', NS.box]);
    must('ip', ['link', 'add', `vx${tag}`, 'netns', NS.other, 'type', 'veth', 'peer', 'name', `vy${tag}`, 'netns', NS.box]);
    const inNs = (ns: string, ...a: string[]) => must('ip', ['netns', 'exec', ns, 'ip', ...a]);
    inNs(NS.host, 'addr', 'add', `${ADDR.host}/24`, 'dev', `vh${tag}`);
    inNs(NS.box, 'addr', 'add', `${ADDR.box}/24`, 'dev', `vb${tag}`);
    inNs(NS.box, 'addr', 'add', `${ADDR.boxSide}/24`, 'dev', `vy${tag}`);
    inNs(NS.other, 'addr', 'add', `${ADDR.other}/24`, 'dev', `vx${tag}`);
    for (const [ns, dev] of [[NS.host, `vh${tag}`], [NS.box, `vb${tag}`], [NS.box, `vy${tag}`], [NS.other, `vx${tag}`]] as const) {
      inNs(ns, 'link', 'set', dev, 'up');
      inNs(ns, 'link', 'set', 'lo', 'up');
    }
    inNs(NS.other, 'route', 'add', '10.77.1.0/24', 'via', ADDR.boxSide);

    // The host's machine first: its node makes the fabric key; then the key is carried (as scp would) to the box's machine.
    node(NS.host, ['--name', 'host', '--state', hostState, '--listen', `${ADDR.host}:7000`, '--peer', `box0=${ADDR.box}:${BOX_PORT}`], 'host.log');
    await waitFor(() => existsSync(join(hostState, 'nodes', 'host.json')), `the host node's record\n${logs()}`);
    copyFileSync(join(hostState, 'fabric.key'), keyCopy);
    chmodSync(keyCopy, 0o600);
    node(NS.box, ['--name', 'box0', '--state', boxState, '--listen', `${ADDR.box}:${BOX_PORT}`, '--key-file', keyCopy], 'box.log');
    await waitFor(() => boxRecord() !== null, `the box node's record\n${logs()}`);
    assert.ok(!existsSync(join(boxState, 'fabric.key')), 'the box made no key of its own');
  });

  after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    }
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => (c.kill('SIGKILL'), resolve()), 10_000);
            c.once('exit', () => (clearTimeout(t), resolve()));
          }),
      ),
    );
    for (const ns of Object.values(NS)) run('ip', ['netns', 'del', ns]); // removes the veths with them
    rmSync(dir, { recursive: true, force: true });
  });

  const copy = (args: string[]) => {
    const r = run(process.execPath, [CLI, 'copy', ...args, '--live', '--state', hostState, '--json']);
    assert.equal(r.status, 0, `copy ${args.join(' ')} exited ${r.status}:\n${r.stderr}\n${logs()}`);
    return JSON.parse(r.stdout) as { result: { verified: boolean; mode: string } };
  };

  it('a direct copy of 8 MiB crosses the veth and verifies', () => {
    const data = randomBytes(8 * MiB);
    writeRange(sdaFile, 0, data);
    const job = copy(['sda', 'sdb', '--length', '8MiB']);
    assert.equal(job.result.mode, 'direct');
    assert.equal(job.result.verified, true);
    assert.equal(sha(fileRange(sdbFile, 0, 8 * MiB)), sha(data));
  });

  it('datagrams forged from a third namespace (no key, a wrong key, a huge epoch) are dropped and counted; a conventional copy then verifies', async () => {
    // Cable ids 0..31 (paper-2012-live's crossing cables are among them): keyless and under a wrong key.
    const script = `
      import dgram from 'node:dgram';
      import { encodeDatagram } from ${JSON.stringify(TRANSPORT)};
      import { senderKey } from ${JSON.stringify(TRANSPORT.replace('udp-transport.js', 'datagram-auth.js'))};
      const s = dgram.createSocket('udp4');
      const frame = new Uint8Array(40).fill(1);
      const wrong = senderKey(new Uint8Array(32).fill(9), 'host');
      let n = 0;
      for (let cable = 0; cable < 32; cable++) {
        for (const dg of [encodeDatagram(0xffffffff, [{ cable, frame }]), encodeDatagram(0xffffffff, [{ cable, frame }], { key: wrong, counter: 2 ** 52 })]) {
          await new Promise((r) => s.send(dg, ${BOX_PORT}, ${JSON.stringify(ADDR.box)}, r));
          n++;
        }
      }
      s.close();
      console.log(n);`;
    const before = boxRecord()?.report?.transport ?? {};
    const sent = Number(must('ip', ['netns', 'exec', NS.other, process.execPath, '--input-type=module', '-e', script]).trim());
    assert.equal(sent, 64);
    // The box reports its counters every second, and the host's own datagrams count too: wait for the drops themselves.
    const droppedIn = (t: Record<string, number>) => t.authFailures - (before.authFailures ?? 0) + (t.unknownCable - (before.unknownCable ?? 0));
    await waitFor(() => {
      const t = boxRecord()?.report?.transport;
      return t !== undefined && droppedIn(t) >= sent;
    }, 'the box reporting the forged datagrams dropped');
    const t = boxRecord()!.report!.transport!;
    const dropped = droppedIn(t);
    assert.ok(t.authFailures - (before.authFailures ?? 0) >= 2, `authFailures ${t.authFailures}`);
    assert.ok(dropped >= sent, `${dropped} of ${sent} forged datagrams counted as dropped`);
    assert.equal(readFileSync(join(dir, 'box.log'), 'utf8').match(/started a new session/g)?.length ?? 0, 1, 'the box rebuilt only for the host (epoch 1), never for the forger');

    const data = randomBytes(8 * MiB);
    writeRange(sdaFile, 16 * MiB, data);
    const job = copy(['sda:16MiB', 'sdb:32MiB', '--length', '8MiB', '--via', 'host']);
    assert.equal(job.result.mode, 'conventional');
    assert.equal(job.result.verified, true);
    assert.equal(sha(fileRange(sdbFile, 32 * MiB, 8 * MiB)), sha(data));
  });
});

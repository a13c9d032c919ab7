/**
 * The CLI's basics, run in-process through createProgram (runCli): copy's JSON and text, the fidelity
 * modes, devices, bad input exiting 2 with a message and nothing on stdout. The last tests run the
 * real executable (node dist/src/cli/main.js, and npx dconnect) end to end for its exit codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dconnectIn as run } from '../helpers/cli-in-process.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function spawned(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('copy --json prints exactly one JSON object with the documented fields', async () => {
  const r = await run('copy', 'sda', 'sdb', '--length', '2MiB', '--json');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]);
  for (const k of ['mode', 'bytes', 'simulatedSeconds', 'mbPerSec', 'verified', 'hostLink']) assert.ok(k in j, `missing ${k}`);
  assert.equal(j.mode, 'direct');
  assert.equal(j.verified, true);
  assert.equal(j.bytes, 2 * 1024 * 1024);
  assert.equal(typeof j.hostLink.upstreamPayloadBytes, 'number');
  assert.equal(typeof j.hostLink.downstreamPayloadBytes, 'number');
});

test('same command twice gives byte-identical JSON', async () => {
  const a = await run('copy', 'sda:1MiB', 'sdb', '--length', '1MiB', '--via', 'host', '--host-lanes', '1', '--seed', '42', '--json');
  const b = await run('copy', 'sda:1MiB', 'sdb', '--length', '1MiB', '--via', 'host', '--host-lanes', '1', '--seed', '42', '--json');
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.equal(JSON.parse(a.stdout).mode, 'conventional');
  assert.equal(JSON.parse(a.stdout).hostLanes, 1);
});

test('copy --fidelity fast and full are both accepted, and the result says how it was obtained', async () => {
  for (const mode of ['fast', 'full']) {
    const r = await run('copy', 'sda', 'sdb', '--length', '2MiB', '--fidelity', mode, '--json');
    assert.equal(r.code, 0, r.stderr);
    const { fidelity: f } = JSON.parse(r.stdout);
    assert.equal(f.mode, mode);
    assert.equal(typeof f.exact, 'boolean');
    assert.equal(typeof f.relativeError99, 'number');
    assert.equal(f.totalChunks, 16);
    assert.ok(f.detailedChunks >= 1 && f.detailedChunks <= 16);
    assert.equal(typeof f.method, 'string');
  }
  assert.equal(JSON.parse((await run('copy', 'sda', 'sdb', '--length', '1MiB', '--json')).stdout).fidelity.mode, 'fast', 'fast is the default');
  const human = await run('copy', 'sda', 'sdb', '--length', '1MiB', '--fidelity', 'full');
  assert.match(human.stdout, /^ {2}fidelity {4}full, every TLP; 8 of 8 chunks simulated TLP by TLP$/m);
});

test('--fidelity takes only fast or full, on copy, repro and sweep', async () => {
  for (const cmd of [['copy', 'sda', 'sdb', '--length', '1MiB'], ['repro', '--runs', '1', '--size', '1MiB', '--only', 'fig6'], ['sweep', '--param', 'depth=1']]) {
    const r = await run(...cmd, '--fidelity', 'exact');
    assert.notEqual(r.code, 0, cmd[0]);
    assert.match(r.stderr, /--fidelity.*'exact' is invalid.*fast, full/, cmd[0]);
    assert.equal(r.stdout, '', cmd[0]);
  }
});

test('devices lists both SSDs and the DC buffer', async () => {
  const r = await run('devices', '--json');
  assert.equal(r.code, 0, r.stderr);
  const { devices } = JSON.parse(r.stdout);
  assert.deepEqual(
    devices.map((d: { name: string; kind: string }) => [d.name, d.kind]),
    [
      ['sda', 'ssd'],
      ['sdb', 'ssd'],
      ['dcbuf0', 'dc-buffer'],
    ],
  );
  assert.equal(devices[0].capacityBytes, 256e9);
  const human = await run('devices');
  assert.match(human.stdout, /sda\s+ssd\s+box0\/slot0/);
});

test('bad input exits 2 (as the README says) with a message naming the problem and nothing on stdout', async () => {
  const cases: [string[], RegExp][] = [
    [['copy', 'sdq', 'sdb', '--length', '1MiB'], /UNKNOWN_DEVICE.*'sdq'/],
    [['copy', 'sda', 'sdb:255GB', '--length', '2GiB'], /OUT_OF_RANGE/],
    [['copy', 'sda:3', 'sdb', '--length', '1MiB'], /UNALIGNED/],
    [['copy', 'sda', 'sdb', '--length', 'lots'], /BAD_SIZE.*'lots'/],
    [['copy', 'sda', 'sda', '--length', '1MiB'], /OVERLAP/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--via', 'nowhere'], /BAD_OPTION/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--host-lanes', '3'], /BAD_PARAM.*--host-lanes 3 is not valid/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--topology', 'no-such-file.yaml'], /BAD_TOPOLOGY/],
    // Usage errors caught by the option parser itself exit 2 too.
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--fidelity', 'approximate'], /'approximate' is invalid.*fast, full/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--no-such-option'], /unknown option '--no-such-option'/],
    [['copy', 'sda', '--length', '1MiB'], /copy needs a source and a destination/],
    [['no-such-command'], /unknown command 'no-such-command'/],
  ];
  for (const [args, re] of cases) {
    const r = await run(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});

test('a malformed topology file is rejected with the offending field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'name: x\nhost: { memoryBytes: 8GiB }\n');
  const r = await run('copy', 'sda', 'sdb', '--length', '1MiB', '--topology', bad);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /BAD_TOPOLOGY/);
  assert.match(r.stderr, /host\.link/);
  const notYaml = join(dir, 'bad2.yaml');
  writeFileSync(notYaml, 'name: [unclosed\n');
  assert.match((await run('devices', '--topology', notYaml)).stderr, /not valid YAML/);
});

test('copy off a terminal prints plain progress lines on stderr, and stdout stays one JSON object', async () => {
  const r = await run('copy', 'sda', 'sdb', '--length', '16MiB', '--fidelity', 'full', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^copy: \d+0% \(\d+\/16777216 bytes\)$/m);
  assert.equal(JSON.parse(r.stdout).verified, true);
});

test('links lists the cables by the names --capture takes, as text and as JSON', async () => {
  const j = await run('links', '--json');
  assert.equal(j.code, 0, j.stderr);
  const { links } = JSON.parse(j.stdout) as { links: string[] };
  assert.ok(links.includes('host') && links.includes('box0.slot0'), links.join(' '));
  const text = await run('links');
  assert.deepEqual(text.stdout.trim().split('\n'), links);
});

test('flags that do not go together are refused by the option parser: exit 2, the pair named, a hint, nothing on stdout', async () => {
  const cases: [string[], RegExp, RegExp][] = [
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--fault', 'loss=1%'], /option '--fault <spec>' cannot be used with option '--live'/, /give --fault to dconnect up/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--set', 'host.lanes=1'], /option '--set <path=value>' cannot be used with option '--live'/, /give --set to dconnect up/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--host-lanes', '1'], /option '--host-lanes <n>' cannot be used with option '--live'/, /--set host\.lanes=N/],
    [['copy', 'sda:/a', 'sdb:/a', '--live', '--image', 'sda=x.img'], /option '--image <dev=file>' cannot be used with option '--live'/, /dconnect up --image/],
    [['copy', 'sda:/a', 'sdb:/a', '--live', '--save', 'sdb=x.img'], /option '--save <dev=file>' cannot be used with option '--live'/, /e2fsck/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--timeline', 't.png'], /option '--timeline <file>' cannot be used with option '--live'/, /simulated copy/],
    // --resume implies --live: a job's settings are the fabric's too.
    [['copy', '--resume', 'j1', '--fault', 'loss=1%'], /option '--fault <spec>' cannot be used with option '--live'/, /dconnect up/],
    [['repro', '--only', 'fig5', '--shard', '1/2', '--trace-events', 't.json'], /option '--trace-events <file>' cannot be used with option '--shard <I\/N>'/, /not a shard: drop --shard/],
    [['devices', '--live', '--topology', 'paper-2012-nic'], /option '--topology <preset\|file>' cannot be used with option '--live'/, /started with \(dconnect up\): drop --topology/],
    [['devices', '--live', '--host', 'h1'], /option '--host <name>' cannot be used with option '--live'/, /drop --host/],
    // Flags that need another (CliCommand.requires).
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--capture', 'host'], /option '--capture <links>' needs option '--pcap <file>'/, /--capture host --pcap move\.pcap/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--pcap', 'm.pcap'], /option '--pcap <file>' needs option '--capture <links>'/, /dconnect links/],
    [['up', '--state', 'never-made', '--nbd-insecure'], /option '--nbd-insecure' needs option '--nbd <host:port>'/, /--nbd 127\.0\.0\.1:10809/],
  ];
  for (const [args, message, hint] of cases) {
    const r = await run(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, new RegExp(`\\n {2}hint: .*${hint.source}`), args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
  // The flags alone, or with what they go with, are fine: the simulated copy takes --fault and --timeline.
  const ok = await run('copy', 'sda', 'sdb', '--length', '1MiB', '--fault', 'loss=0.1%', '--json');
  assert.equal(ok.code, 0, ok.stderr);
});

test('the executable: exit 0 with one JSON object, exit 2 on a usage error and on bad input, --help exits 0', () => {
  const ok = spawned('copy', 'sda', 'sdb', '--length', '1MiB', '--json');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).verified, true);
  const usage = spawned('copy', 'sda', 'sdb', '--length', '1MiB', '--no-such-option');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /unknown option '--no-such-option'/);
  const conflict = spawned('copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--fault', 'loss=1%');
  assert.equal(conflict.code, 2);
  assert.match(conflict.stderr, /cannot be used with option '--live'\n {2}hint: /);
  const bad = spawned('copy', 'sdq', 'sdb', '--length', '1MiB');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^dconnect: error \[UNKNOWN_DEVICE\]: .*'sdq'/m);
  assert.equal(bad.stdout, '');
  const help = spawned('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: dconnect /);
});

test('npx dconnect runs the package\'s entry', { skip: spawnSync('npx', ['--version'], { encoding: 'utf8' }).status !== 0 && 'no npx' }, () => {
  const r = spawnSync('npx', ['--no-install', 'dconnect', 'devices', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).devices[0].name, 'sda');
  const bad = spawnSync('npx', ['--no-install', 'dconnect', 'copy', 'sda'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /copy needs a source and a destination/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('copy --json prints exactly one JSON object with the documented fields', () => {
  const r = run('copy', 'sda', 'sdb', '--length', '2MiB', '--json');
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

test('same command twice gives byte-identical JSON', () => {
  const a = run('copy', 'sda:1MiB', 'sdb', '--length', '1MiB', '--via', 'host', '--host-lanes', '1', '--seed', '42', '--json');
  const b = run('copy', 'sda:1MiB', 'sdb', '--length', '1MiB', '--via', 'host', '--host-lanes', '1', '--seed', '42', '--json');
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.equal(JSON.parse(a.stdout).mode, 'conventional');
  assert.equal(JSON.parse(a.stdout).hostLanes, 1);
});

test('copy --fidelity fast and full are both accepted, and the result says how it was obtained', () => {
  for (const mode of ['fast', 'full']) {
    const r = run('copy', 'sda', 'sdb', '--length', '2MiB', '--fidelity', mode, '--json');
    assert.equal(r.code, 0, r.stderr);
    const { fidelity: f } = JSON.parse(r.stdout);
    assert.equal(f.mode, mode);
    assert.equal(typeof f.exact, 'boolean');
    assert.equal(typeof f.relativeError99, 'number');
    assert.equal(f.totalChunks, 16);
    assert.ok(f.detailedChunks >= 1 && f.detailedChunks <= 16);
    assert.equal(typeof f.method, 'string');
  }
  assert.equal(JSON.parse(run('copy', 'sda', 'sdb', '--length', '1MiB', '--json').stdout).fidelity.mode, 'fast', 'fast is the default');
  const human = run('copy', 'sda', 'sdb', '--length', '1MiB', '--fidelity', 'full');
  assert.match(human.stdout, /^ {2}fidelity {4}full, every TLP; 8 of 8 chunks simulated TLP by TLP$/m);
});

test('--fidelity takes only fast or full, on copy, repro and sweep', () => {
  for (const cmd of [['copy', 'sda', 'sdb', '--length', '1MiB'], ['repro', '--runs', '1', '--size', '1MiB', '--only', 'fig6'], ['sweep', '--param', 'depth=1']]) {
    const r = run(...cmd, '--fidelity', 'exact');
    assert.notEqual(r.code, 0, cmd[0]);
    assert.match(r.stderr, /--fidelity.*'exact' is invalid.*fast, full/, cmd[0]);
    assert.equal(r.stdout, '', cmd[0]);
  }
});

test('devices lists both SSDs and the DC buffer', () => {
  const r = run('devices', '--json');
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
  const human = run('devices');
  assert.match(human.stdout, /sda\s+ssd\s+box0\/slot0/);
});

test('bad input exits 2 (as the README says) with a message naming the problem and nothing on stdout', () => {
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
    const r = run(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});

test('a malformed topology file is rejected with the offending field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'name: x\nhost: { memoryBytes: 8GiB }\n');
  const r = run('copy', 'sda', 'sdb', '--length', '1MiB', '--topology', bad);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /BAD_TOPOLOGY/);
  assert.match(r.stderr, /host\.link/);
  const notYaml = join(dir, 'bad2.yaml');
  writeFileSync(notYaml, 'name: [unclosed\n');
  assert.match(run('devices', '--topology', notYaml).stderr, /not valid YAML/);
});

test('copy off a terminal prints plain progress lines on stderr, and stdout stays one JSON object', () => {
  const r = run('copy', 'sda', 'sdb', '--length', '16MiB', '--fidelity', 'full', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^copy: \d+0% \(\d+\/16777216 bytes\)$/m);
  assert.equal(JSON.parse(r.stdout).verified, true);
});

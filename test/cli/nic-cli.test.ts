/**
 * `dconnect copy` with a client at one end or both (issue 9), end to end through the built CLI: the
 * JSON and text reports, and bad requests (run in-process, createProgram) refused with
 * `dconnect: error [CODE]`, a hint, exit 2, nothing on stdout and no file written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dconnectIn } from '../helpers/cli-in-process.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const NIC = ['--topology', 'paper-2012-nic'];
const dir = mkdtempSync(join(tmpdir(), 'dconnect-nic-cli-'));

test('copy sda net:client0 --json: one JSON object, verified, through the NIC and the DC buffer', () => {
  const r = run('copy', 'sda', 'net:client0', '--length', '2MiB', ...NIC, '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  assert.equal(j.verified, true);
  assert.equal(j.kind, 'serve');
  assert.equal(j.mode, 'direct');
  assert.equal(j.nic, 'nic0');
  assert.equal(j.relay, 'dcbuf0');
  assert.equal(j.bytes, 2 * 1024 * 1024);
  assert.equal(j.frames, 2048);
  assert.ok(j.hostLink.upstreamPayloadBytes < 0.1 * j.bytes && j.hostLink.downstreamPayloadBytes < 0.1 * j.bytes);
  assert.equal(j.trace['nic.box0.slot3'].rxMissed, 0);
});

test('copy text output: the move, the NIC, the relay, "verified    yes"; --via host --host-lanes 1', () => {
  const p = run('copy', 'net:client0', 'net:client1', '--length', '1MiB', ...NIC);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /^direct pipeline net:client0 -> net:client1 through nic0, 1 MiB, host link x8$/m);
  assert.match(p.stdout, /relayed by dcbuf0/);
  assert.match(p.stdout, /verified {4}yes/);
  const i = run('copy', 'net:client0', 'sdb:1MiB', '--length', '1MiB', ...NIC, '--via', 'host', '--host-lanes', '1');
  assert.equal(i.status, 0, i.stderr);
  assert.match(i.stdout, /^conventional ingest net:client0 -> sdb:1MiB through nic0, 1 MiB in 128 KiB chunks, 3 commands in flight, host link x1$/m);
  assert.match(i.stdout, /relayed by host memory/);
  assert.match(i.stdout, /verified {4}yes/);
  assert.match(i.stdout, /8 drive commands/);
});

test('same seed, same JSON through the CLI; another seed verifies too', () => {
  const a = run('copy', 'net:client0', 'sdb', '--length', '1MiB', ...NIC, '--json', '--seed', '5');
  const b = run('copy', 'net:client0', 'sdb', '--length', '1MiB', ...NIC, '--json', '--seed', '5');
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  const c = run('copy', 'net:client0', 'sdb', '--length', '1MiB', ...NIC, '--json', '--seed', '6');
  assert.equal(JSON.parse(c.stdout).verified, true);
});

test('a capture of the client\'s cable holds its frames', () => {
  const pcap = join(dir, 'client0.pcap');
  const r = run('copy', 'sda', 'net:client0', '--length', '64KiB', ...NIC, '--capture', 'client0-net.box0.slot3', '--pcap', pcap);
  assert.equal(r.status, 0, r.stderr);
  const m = /captured (\d+) frames on client0-net\.box0\.slot3/.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.ok(Number(m[1]) >= 64, 'at least the 64 data frames');
  assert.ok(readFileSync(pcap).length > 64 * 1024, 'the payloads are in the file');
});

const BAD_TOPOLOGY = join(dir, 'bad-nic.yaml');
writeFileSync(BAD_TOPOLOGY, 'extends: paper-2012-nic\nname: bad-nic\nnic:\n  framePayloadBytes: 1000\n');
const DUP = join(dir, 'dup-clients.yaml');
writeFileSync(DUP, 'extends: paper-2012-nic\nname: dup\nboxes:\n  - name: box0\n    slots:\n      - { kind: ssd, serial: A }\n      - { kind: dc-buffer }\n      - kind: nic\n        clients: [{ name: c }, { name: c }]\n');

const refusals: { name: string; args: string[]; code: string; message: RegExp; hint?: RegExp }[] = [
  { name: 'an unknown client', args: ['copy', 'net:nobody', 'sdb', '--length', '1MiB', ...NIC], code: 'UNKNOWN_DEVICE', message: /no client 'nobody'/, hint: /clients: net:client0, net:client1/ },
  { name: 'one client at both ends', args: ['copy', 'net:client0', 'net:client0', '--length', '1MiB', ...NIC], code: 'OVERLAP', message: /both client client0/, hint: /one client to another/ },
  { name: 'a client on a topology without a NIC', args: ['copy', 'sda', 'net:client0', '--length', '1MiB', '--topology', 'paper-2012'], code: 'UNKNOWN_DEVICE', message: /no client 'client0'/, hint: /paper-2012-nic/ },
  { name: 'a length that is not whole frames', args: ['copy', 'sda', 'net:client0', '--length', '1000', ...NIC], code: 'UNALIGNED', message: /1024-byte frame payload/, hint: /multiple of 1024/ },
  { name: 'a source beyond the drive', args: ['copy', 'sda:300GB', 'net:client0', '--length', '1MiB', ...NIC], code: 'OUT_OF_RANGE', message: /beyond sda's capacity/, hint: /offset \+ length/ },
  { name: 'a misaligned destination offset', args: ['copy', 'net:client0', 'sdb:100', '--length', '1MiB', ...NIC], code: 'UNALIGNED', message: /destination offset 100/, hint: /multiple of 512/ },
  { name: 'an unknown drive', args: ['copy', 'net:client0', 'sdz', '--length', '1MiB', ...NIC], code: 'UNKNOWN_DEVICE', message: /no block device 'sdz'/, hint: /sda.*sdb/ },
  { name: 'an offset on a client', args: ['copy', 'net:client0:4KiB', 'sdb', '--length', '1MiB', ...NIC], code: 'BAD_OPTION', message: /a client takes no offset/, hint: /net:client0$/m },
  { name: 'net: without a name', args: ['copy', 'net:', 'sdb', '--length', '1MiB', ...NIC], code: 'BAD_OPTION', message: /names no client/, hint: /net:client0/ },
  { name: 'a fault on a NIC network cable', args: ['copy', 'net:client0', 'sdb', '--length', '1MiB', ...NIC, '--fault', 'loss=1%@client0-net.box0.slot3'], code: 'BAD_OPTION', message: /on a NIC's network, whose block transfer protocol does not retransmit/, hint: /ExpEther cables/ },
  { name: 'a media error with a client end', args: ['copy', 'net:client0', 'sdb', '--length', '1MiB', ...NIC, '--fault', 'media-error=sdb:8:write'], code: 'BAD_OPTION', message: /drive faults \(media-error=\.\.\..*\) do not apply to moves through a NIC/, hint: /cable faults/ },
  { name: '--host naming no host', args: ['copy', 'sda', 'net:client0', '--length', '1MiB', ...NIC, '--host', 'host9'], code: 'BAD_OPTION', message: /has no host 'host9'/, hint: /hosts: host \(group 1\)/ },
  { name: 'more than one pair', args: ['copy', 'sda', 'net:client0', 'sdb', 'net:client1', '--length', '1MiB', ...NIC], code: 'BAD_OPTION', message: /one pair/, hint: /one source and one destination/ },
  { name: 'no --length', args: ['copy', 'sda', 'net:client0', ...NIC], code: 'BAD_OPTION', message: /needs --length/, hint: /--length/ },
  { name: 'depth 0', args: ['copy', 'sda', 'net:client0', '--length', '1MiB', '--depth', '0', ...NIC], code: 'BAD_OPTION', message: /depth 0/, hint: /1 to 64/ },
  { name: 'a zero chunk', args: ['copy', 'net:client0', 'net:client1', '--length', '1MiB', '--chunk', '0', ...NIC], code: 'BAD_OPTION', message: /chunk size 0/, hint: /multiple of 1024/ },
  { name: 'a bad --via', args: ['copy', 'sda', 'net:client0', '--length', '1MiB', '--via', 'nic', ...NIC], code: 'BAD_OPTION', message: /--via 'nic'/, hint: /dc-buffer/ },
  { name: 'a malformed NIC block', args: ['copy', 'sda', 'net:client0', '--length', '1MiB', '--topology', BAD_TOPOLOGY], code: 'BAD_TOPOLOGY', message: /nic\.framePayloadBytes: must be a power of two/ },
  { name: 'two clients of one name', args: ['copy', 'sda', 'net:c', '--length', '1MiB', '--topology', DUP], code: 'BAD_TOPOLOGY', message: /client name 'c' is taken/, hint: /paper-2012-nic/ },
];

for (const c of refusals) {
  test(`refused: ${c.name}`, async () => {
    const r = await dconnectIn(...c.args);
    assert.equal(r.code, 2, `${c.args.join(' ')}\n${r.stderr}`);
    assert.equal(r.stdout, '');
    const m = /^dconnect: error \[([A-Z_]+)\]: (.*)$/m.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(m[1], c.code, r.stderr);
    assert.match(r.stderr, c.message);
    if (c.hint) {
      const h = /^ {2}hint: (.*)$/m.exec(r.stderr);
      assert.ok(h, `no hint: ${r.stderr}`);
      assert.match(h[1], c.hint);
    }
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  });
}

test('a bad request with --capture writes no capture file', async () => {
  for (const args of [
    ['sda', 'net:client0', '--length', '1000'],
    ['sda:300GB', 'net:client0', '--length', '1MiB'],
    ['net:client0', 'sdz', '--length', '1MiB'],
  ]) {
    const pcap = join(dir, `bad-${args[0].replace(/\W/g, '_')}.pcap`);
    const r = await dconnectIn('copy', ...args, ...NIC, '--capture', 'host', '--pcap', pcap);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /dconnect: error \[/);
    assert.equal(existsSync(pcap), false, `${args.join(' ')} wrote ${pcap}`);
  }
});

test('cable faults on ExpEther cables: a NIC move still arrives verified, the faults counted (a NIC network\'s cables are left out)', () => {
  const r = run('copy', 'net:client0', 'sdb', '--length', '1MiB', ...NIC, '--via', 'host', '--fault', 'loss=1%,reorder=1%', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { verified: boolean; trace: Record<string, Record<string, number>> };
  assert.equal(j.verified, true);
  const m = /faults: (\d+) lost, .* reordered, of (\d+) frames on faulty cables/.exec(r.stderr);
  assert.ok(m && Number(m[1]) > 0, r.stderr);
  assert.ok(j.trace['bridge.host'].retransmittedFrames > 0, 'the host bridge retransmitted what was lost');
  assert.equal(j.trace['nic.box0.slot3'].rxMissed, 0);
});

test('--host names the host that runs a move through a NIC (the first here, the same move as without it)', () => {
  const a = JSON.parse(run('copy', 'net:client0', 'sdb', '--length', '1MiB', ...NIC, '--json').stdout);
  const b = JSON.parse(run('copy', 'net:client0', 'sdb', '--length', '1MiB', ...NIC, '--host', 'host', '--json').stdout);
  assert.equal(b.verified, true);
  assert.equal(b.simulatedSeconds, a.simulatedSeconds);
});

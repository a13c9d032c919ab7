/**
 * A topology with a NIC comes up live (issue 9 with issue 10): the NIC's network (its port, switch and
 * clients) runs in its box's node, the host boots the NIC driver over the UDP channel, `devices --live`
 * lists it, drive copies run as before, and a move through the NIC is refused with the simulated
 * command to use. Every command runs with a time limit; the nodes are stopped and the state removed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dconnect } from '../helpers/cli.js';


describe('a NIC topology on the live fabric', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-live-nic-'));
  const state = join(dir, 'state');
  // Small drives keep the sparse files small; the rest is paper-2012-nic.
  const topo = join(dir, 'nic-small.yaml');
  writeFileSync(topo, 'extends: paper-2012-nic\nname: nic-small\nssd:\n  capacityBytes: 64MiB\n');

  before(() => {
    const r = dconnect(['up', '--topology', topo, '--state', state, '--pace', 'none']);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the NIC the host booted over the fabric, with its MAC', () => {
    const r = dconnect(['devices', '--live', '--state', state, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const d = JSON.parse(r.stdout) as { devices: { name: string; kind: string; mac?: string; box: string; slot: number }[] };
    assert.deepEqual(d.devices.filter((x) => x.kind === 'ssd').map((x) => x.name), ['sda', 'sdb']);
    const nics = d.devices.filter((x) => x.kind === 'nic');
    assert.deepEqual(nics.map((x) => [x.name, x.box, x.slot]), [['nic0', 'box0', 3]]);
    assert.match(nics[0].mac!, /^00:60:b9:/);
  });

  it('copies between its drives as any live fabric does, verified', () => {
    const r = dconnect(['copy', 'sda', 'sdb', '--length', '4MiB', '--live', '--state', state, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout.trim().split('\n').pop()!) as { result: { verified: boolean } }).result.verified, true);
  });

  it('refuses a move through the NIC live, naming the simulated command', () => {
    const r = dconnect(['copy', 'sda', 'net:client0', '--length', '1MiB', '--live', '--state', state]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /moves through a NIC run in simulation only/);
    assert.match(r.stderr, /hint: drop --live/);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CMBSZ_RDS, CMBSZ_WDS, decodeCmb, encodeCmb } from '../../src/devices/nvme/cmb.js';
import { NvmeSsd } from '../../src/devices/nvme-ssd.js';
import { boot } from '../../src/runtime/boot.js';
import { buildFabric } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';
import { applySettings } from '../../src/topology/params.js';

const MiB = 1 << 20;

test('CMBLOC and CMBSZ describe a CMB exactly (NVMe 1.4 §3.1.11-12), in the smallest unit that holds it', () => {
  for (const f of [
    { sizeBytes: 32 * MiB, bar: 2, offsetBytes: 0, flags: CMBSZ_RDS | CMBSZ_WDS },
    { sizeBytes: 4096, bar: 4, offsetBytes: 8192, flags: CMBSZ_WDS },
    { sizeBytes: 2 ** 33, bar: 2, offsetBytes: 0, flags: 0x1f },
  ]) {
    const { cmbloc, cmbsz } = encodeCmb(f);
    assert.deepEqual(decodeCmb(cmbloc, cmbsz), f);
  }
  // 32 MiB: SZU 0 (4 KiB units) holds it, SZ 8192; RDS and WDS.
  assert.equal(encodeCmb({ sizeBytes: 32 * MiB, bar: 2, offsetBytes: 0, flags: CMBSZ_RDS | CMBSZ_WDS }).cmbsz, ((8192 << 12) | (0 << 8) | 0x18) >>> 0);
  assert.equal(decodeCmb(0, 0), null, 'CMBSZ 0: no CMB');
});

test('a drive with a CMB has BAR2; its driver finds it through CAP.CMBS, CMBMSC.CRE, CMBLOC and CMBSZ, and the DC manager records it as a relay', () => {
  const t = applySettings(loadTopology('paper-2012'), ['boxes.0.slots.1.ssd.cmbSizeBytes=32MiB']).topology;
  const f = buildFabric(t, 1);
  const host = boot(f, { maxTransferBytes: MiB });
  const relays = host.manager.relays();
  assert.deepEqual(relays.map((r) => [r.name, r.via, r.device, r.sizeBytes]), [['sdb CMB', 'cmb', 'sdb', 32 * MiB], ['dcbuf0', 'dc-buffer', 'dcbuf0', 64 * MiB]]);
  const sdb = f.slots[1].device as NvmeSsd;
  assert.ok(sdb.cmb);
  assert.equal(relays[0].busAddress, sdb.config.barAddress(2), 'the relay is the BAR enumeration gave BAR2');
  assert.equal((f.slots[0].device as NvmeSsd).cmb, null, 'sda was given none');
});

test('a drive without a CMB exposes BAR0 only, reads CMBSZ as 0, and boots exactly as before (no relay recorded)', () => {
  const f = buildFabric(loadTopology('paper-2012'), 1);
  const host = boot(f, { maxTransferBytes: MiB });
  assert.deepEqual(host.manager.relays().map((r) => r.name), ['dcbuf0']);
  const sda = f.slots[0].device as NvmeSsd;
  assert.equal(sda.cmb, null);
  assert.equal(sda.config.barSize(2), 0);
  assert.deepEqual([...sda.regRead(0, 0x38, 8)], [0, 0, 0, 0, 0, 0, 0, 0], 'CMBLOC and CMBSZ read 0');
});

/**
 * Fuzzing (issue "Proof of path", item 5): arbitrary bytes or text into every decoder a packet or a
 * file reaches (the TLP codec, NVMe structures, PRP lists, topology loading; the PDU codec has its
 * own in test/expether/pdu-codec.test.ts). Each either gives a value that round-trips (decode,
 * encode, decode again: the same value) or throws the project's coded error; never another exception.
 * Inputs are bounded (at most a few KiB), and every run ends: no hang, no unbounded memory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { DconnectError } from '../../src/core/errors.js';
import { decodeCqe, decodeIdentifyController, decodeIdentifyNamespace, decodeSqe, encodeCqe, encodeIdentifyController, encodeIdentifyNamespace, encodeSqe } from '../../src/devices/nvme/nvme-structs.js';
import { decodePrpEntries, encodePrpEntries } from '../../src/devices/nvme/prp.js';
import { decodeTlp, encodeTlp } from '../../src/pcie/tlp-codec.js';
import { parseTopology } from '../../src/topology/load.js';

const RUNS = { numRuns: 400, seed: 2026 };

/** Runs `decode`; a coded error is a fine answer, anything else thrown is a failure. */
function decodedOrCoded<T>(decode: () => T, code: string): T | null {
  try {
    return decode();
  } catch (e) {
    if (e instanceof DconnectError && e.code === code) return null;
    throw new Error(`expected a value or a ${code} error, got ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
  }
}

/** Byte arrays biased toward the lengths and leading bytes a decoder looks at first. */
const bytes = (lengths: number[], max = 256) => fc.oneof(fc.uint8Array({ maxLength: max }), ...lengths.map((n) => fc.uint8Array({ minLength: n, maxLength: n })));

describe('fuzz: decoders give a round-tripping value or a coded error', () => {
  it('TLP codec', () => {
    const tlpBytes = fc.oneof(
      bytes([12, 16, 20, 140], 4200),
      // Valid Fmt/Type bytes up front, so the fuzz goes past the first check.
      fc.tuple(fc.constantFrom(0x00, 0x20, 0x40, 0x60, 0x04, 0x44, 0x05, 0x45, 0x0a, 0x4a), fc.uint8Array({ minLength: 11, maxLength: 600 })).map(([b0, rest]) => Uint8Array.from([b0, ...rest])),
    );
    fc.assert(
      fc.property(tlpBytes, (b) => {
        const t = decodedOrCoded(() => decodeTlp(b), 'MALFORMED_PACKET');
        if (t) assert.deepEqual(decodeTlp(encodeTlp(t)), t);
      }),
      RUNS,
    );
  });

  it('NVMe submission and completion entries, identify data, PRP lists', () => {
    fc.assert(
      fc.property(bytes([64], 128), (b) => {
        const e = decodedOrCoded(() => decodeSqe(b), 'MALFORMED_PACKET');
        if (e) assert.deepEqual(decodeSqe(encodeSqe(e)), e);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(bytes([16], 64), (b) => {
        const c = decodedOrCoded(() => decodeCqe(b), 'MALFORMED_PACKET');
        if (c) assert.deepEqual(decodeCqe(encodeCqe(c)), c);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(bytes([4096], 4200), (b) => {
        const c = decodedOrCoded(() => decodeIdentifyController(b), 'MALFORMED_PACKET');
        if (c) assert.deepEqual(decodeIdentifyController(encodeIdentifyController(c)), c);
        const n = decodedOrCoded(() => decodeIdentifyNamespace(b), 'MALFORMED_PACKET');
        if (n) assert.deepEqual(decodeIdentifyNamespace(encodeIdentifyNamespace(n)), n);
      }),
      { numRuns: 100, seed: 2026 },
    );
    fc.assert(
      fc.property(bytes([8, 16, 4096], 4200), (b) => {
        const p = decodedOrCoded(() => decodePrpEntries(b), 'MALFORMED_PACKET');
        if (p) assert.deepEqual(decodePrpEntries(encodePrpEntries(p)), p);
      }),
      RUNS,
    );
  });

  it('topology loading: arbitrary text, and the preset with lines replaced by arbitrary ones', () => {
    const preset = readFileSync(fileURLToPath(new URL('../../../presets/paper-2012.yaml', import.meta.url)), 'utf8').split('\n');
    const mutated = fc.tuple(fc.nat(preset.length - 1), fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('  lanes: 3', 'boxes: []', 'extends: nowhere', 'extends: paper-2012', '  - kind: nic', 'ssd: 7', '  mpsBytes: -128', 'name: [', '&a [*a]', '"\\u0000"'))).map(([i, line]) => {
      const lines = preset.slice();
      lines[i] = line;
      return lines.join('\n');
    });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), mutated), (text) => {
        decodedOrCoded(() => parseTopology(text, 'fuzz.yaml'), 'BAD_TOPOLOGY');
      }),
      { numRuns: 300, seed: 2026 },
    );
  });
});

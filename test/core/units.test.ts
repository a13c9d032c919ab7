import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DconnectError } from '../../src/core/errors.js';
import { formatBytes, formatSizeExact, formatTimePs, parseCount, parseSize } from '../../src/core/units.js';

function assertDconnectError(fn: () => unknown, code: string, mentions: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DconnectError, `expected DconnectError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.ok(e.message.includes(mentions), `message '${e.message}' should name '${mentions}'`);
    return true;
  });
}

describe('parseSize', () => {
  it('parses plain numbers as bytes', () => {
    assert.equal(parseSize('512'), 512);
    assert.equal(parseSize('0'), 0);
    assert.equal(parseSize(' 4096 '), 4096);
    assert.equal(parseSize('100B'), 100);
  });

  it('binary units: KiB, MiB, GiB, TiB and the short forms k, m, g, t', () => {
    assert.equal(parseSize('4KiB'), 4096);
    assert.equal(parseSize('128KiB'), 131072);
    assert.equal(parseSize('64MiB'), 64 * 1024 * 1024);
    assert.equal(parseSize('1GiB'), 1073741824);
    assert.equal(parseSize('2TiB'), 2 * 1024 ** 4);
    assert.equal(parseSize('4k'), 4096);
    assert.equal(parseSize('4K'), 4096);
    assert.equal(parseSize('3m'), 3 * 1024 ** 2);
    assert.equal(parseSize('1g'), 1024 ** 3);
  });

  it('SI units: KB, MB, GB, TB are powers of 1000', () => {
    assert.equal(parseSize('256GB'), 256_000_000_000);
    assert.equal(parseSize('1KB'), 1000);
    assert.equal(parseSize('5MB'), 5_000_000);
    assert.equal(parseSize('1TB'), 1e12);
  });

  it('is case-insensitive in the unit and allows a space before it', () => {
    assert.equal(parseSize('4kib'), 4096);
    assert.equal(parseSize('4 KiB'), 4096);
    assert.equal(parseSize('1gib'), 1073741824);
  });

  it('accepts fractions that come to whole bytes', () => {
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize('0.5MiB'), 524288);
  });

  it('rejects unknown units, garbage, negatives and fractional bytes with BAD_SIZE naming the input', () => {
    for (const bad of ['', 'abc', '4XB', '-1', '1.2.3', '12 34', 'KiB', '0.5', '1.3B']) {
      assertDconnectError(() => parseSize(bad), 'BAD_SIZE', `'${bad}'`);
    }
  });

  it('names the field in the message and gives a hint', () => {
    try {
      parseSize('lots', '--length');
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof DconnectError);
      assert.match(e.message, /--length 'lots'/);
      assert.ok(e.hint && e.hint.length > 0);
    }
  });

  it('property: n with a binary unit is n times the unit', () => {
    const units: [string, number][] = [
      ['', 1],
      ['KiB', 1024],
      ['MiB', 1024 ** 2],
      ['GiB', 1024 ** 3],
      ['KB', 1000],
      ['MB', 1e6],
      ['GB', 1e9],
    ];
    fc.assert(
      fc.property(fc.nat({ max: 100000 }), fc.constantFrom(...units), (n, [u, mult]) => {
        assert.equal(parseSize(`${n}${u}`), n * mult);
      }),
      { seed: 3, numRuns: 200 },
    );
  });
});

describe('parseCount', () => {
  it('parses integers in range', () => {
    assert.equal(parseCount('3', 'depth', 1, 64), 3);
    assert.equal(parseCount('1', 'depth', 1, 64), 1);
    assert.equal(parseCount('64', 'depth', 1, 64), 64);
    assert.equal(parseCount(' 7 ', 'depth', 1, 64), 7);
  });

  it('rejects out-of-range and non-integers with BAD_OPTION naming the input and the range', () => {
    for (const bad of ['0', '65', '-1', '1.5', 'x', '', '3k']) {
      assertDconnectError(() => parseCount(bad, 'depth', 1, 64), 'BAD_OPTION', `depth '${bad}'`);
    }
    assertDconnectError(() => parseCount('99', 'depth', 1, 64), 'BAD_OPTION', '1 to 64');
  });
});

describe('parseSize: too large', () => {
  it('a size beyond 2^53 - 1 bytes is refused as too large, with the limit (not as "not whole")', () => {
    for (const big of ['9999999999999999999999', '9007199254740992', '100000TiB']) {
      assertDconnectError(() => parseSize(big, '--length'), 'BAD_SIZE', 'too large');
      assertDconnectError(() => parseSize(big, '--length'), 'BAD_SIZE', String(Number.MAX_SAFE_INTEGER));
    }
    assert.equal(parseSize(String(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
    assertDconnectError(() => parseSize('1.5'), 'BAD_SIZE', 'not a whole number');
  });
});

describe('formatSizeExact', () => {
  it('prints an offset in the largest binary unit that divides it, as parseSize reads it back', () => {
    assert.equal(formatSizeExact(0), '0');
    assert.equal(formatSizeExact(1000), '1000');
    assert.equal(formatSizeExact(4096), '4KiB');
    assert.equal(formatSizeExact(12288), '12KiB');
    assert.equal(formatSizeExact(1073741824), '1GiB');
    assert.equal(formatSizeExact(1536 * 1024 ** 2), '1536MiB');
    for (const n of [0, 1, 512, 4096, 1048576 + 4096, 3 * 1024 ** 4, 123456789]) assert.equal(parseSize(formatSizeExact(n)), n);
  });
});

describe('formatBytes', () => {
  it('uses whole binary units when exact', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1024), '1 KiB');
    assert.equal(formatBytes(131072), '128 KiB');
    assert.equal(formatBytes(64 * 1024 * 1024), '64 MiB');
    assert.equal(formatBytes(1073741824), '1 GiB');
    assert.equal(formatBytes(1024 ** 4), '1 TiB');
    assert.equal(formatBytes(1024 ** 5), '1024 TiB');
  });

  it('formats fractions with a readable precision', () => {
    // 256 GB is 238.4185791... GiB.
    assert.equal(formatBytes(256e9), '238.4 GiB');
    assert.match(formatBytes(1536), /^1\.50? KiB$/);
  });

  it('1536 formats as "1.5 KiB", as its doc comment promises', () => {
    assert.equal(formatBytes(1536), '1.5 KiB');
  });

  it('round-trips through parseSize for exact binary sizes', () => {
    for (const n of [1, 512, 4096, 131072, 64 * 1024 ** 2, 1024 ** 3]) {
      assert.equal(parseSize(formatBytes(n).replace(' ', '')), n);
    }
  });
});

describe('formatTimePs', () => {
  it('picks a unit by magnitude', () => {
    assert.equal(formatTimePs(1500), '1.5 ns');
    assert.equal(formatTimePs(2_500_000), '2.500 us');
    assert.equal(formatTimePs(3e9), '3.000 ms');
    assert.equal(formatTimePs(1.25e12), '1.250 s');
  });
});

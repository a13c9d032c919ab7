import { DconnectError } from './errors.js';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/**
 * Parses a byte size: `512`, `4KiB`, `1GiB`, `256GB` (SI), `4k` (binary). Returns an integer number of
 * bytes. Throws BAD_SIZE naming the input and the accepted forms.
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new DconnectError(
      'BAD_SIZE',
      `${what} '${text}' is not a size`,
      'write a number of bytes with an optional unit: 512, 4KiB, 128KiB, 1GiB, 256GB',
    );
  }
  const bytes = Number(m[1]) * unit;
  // Too large first: above 2^53 a fraction cannot even be represented, so "not whole" would mislead.
  if (bytes > Number.MAX_SAFE_INTEGER) {
    throw new DconnectError('BAD_SIZE', `${what} '${text}' is too large: at most ${Number.MAX_SAFE_INTEGER} bytes (2^53 - 1, about 8 PiB)`, 'give a smaller size, e.g. 1GiB or 256GB');
  }
  if (!Number.isInteger(bytes)) {
    throw new DconnectError('BAD_SIZE', `${what} '${text}' is not a whole number of bytes`, 'use a whole number of bytes');
  }
  return bytes;
}

/** Parses a non-negative integer count, with a range check. */
export function parseCount(text: string, what: string, min: number, max: number): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new DconnectError('BAD_OPTION', `${what} '${text}' is not an integer from ${min} to ${max}`);
  }
  return n;
}

/** Formats bytes with a binary unit: 1073741824 -> "1 GiB", 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = String(Number(v.toFixed(v < 10 ? 2 : 1)));
  return `${s} ${units[i]}`;
}

/**
 * An exact size in the form parseSize reads back, in the largest binary unit that divides it:
 * 1073741824 -> "1GiB", 12288 -> "12KiB", 1000 -> "1000". For offsets, which a user pastes back.
 */
export function formatSizeExact(bytes: number): string {
  const units: [string, number][] = [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]];
  for (const [u, n] of units) if (bytes !== 0 && bytes % n === 0) return `${bytes / n}${u}`;
  return String(bytes);
}

/** Formats picoseconds in a readable unit. */
export function formatTimePs(ps: number): string {
  if (ps >= 1e12) return `${(ps / 1e12).toFixed(3)} s`;
  if (ps >= 1e9) return `${(ps / 1e9).toFixed(3)} ms`;
  if (ps >= 1e6) return `${(ps / 1e6).toFixed(3)} us`;
  return `${(ps / 1e3).toFixed(1)} ns`;
}

const TIME_UNITS_PS: Record<string, number> = { ns: 1e3, us: 1e6, ms: 1e9, s: 1e12 };

/** `250us`, `2ms`, `1.5s` -> picoseconds (a unit is required: a bare number is ambiguous). */
export function parseTime(text: string, what = 'time'): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s)$/.exec(text.trim());
  if (!m) throw new DconnectError('BAD_SIZE', `${what} '${text}' is not a time`, 'use a number and a unit: 500ns, 250us, 2ms, 1s');
  return Math.round(Number(m[1]) * TIME_UNITS_PS[m[2]]);
}


/** A drive's capacity as drives are sold, in decimal units: `256 GB`, `512.1 MB`. */
export const driveCapacity = (bytes: number): string => (bytes >= 1e9 ? `${+(bytes / 1e9).toFixed(1)} GB` : `${+(bytes / 1e6).toFixed(1)} MB`);

import { DconnectError } from '../core/errors.js';
import { parseCount, parseSize } from '../core/units.js';
import type { FidelityMode } from '../runtime/copy.js';
import { MOVE_VIAS, type MoveVia } from '../runtime/moves.js';

/** The choices of --fidelity, in the order the help lists them. */
export const FIDELITY_MODES = ['fast', 'full'] as const satisfies readonly FidelityMode[];

/** `sda` or `sda:4KiB` -> device and byte offset. */
export function parseDeviceRange(text: string, role: string): { device: string; offset: number } {
  const i = text.indexOf(':');
  if (i < 0) return { device: text, offset: 0 };
  const device = text.slice(0, i);
  if (!device) throw new DconnectError('BAD_OPTION', `${role} '${text}' has no device name`, 'write it as NAME or NAME:OFFSET, e.g. sda:1GiB');
  return { device, offset: parseSize(text.slice(i + 1), `${role} offset`) };
}

export function parseSeed(text: string): number {
  return parseCount(text, '--seed', 0, 2 ** 32 - 1);
}

/** `--via` of a move (between drives, through a NIC, of files, live): a relay sort (`dc-buffer`, `cmb`), `nearest` (every relay, by distance then load) or `host`. */
export function parseMoveVia(text: string): MoveVia {
  const v = MOVE_VIAS.find((x) => x === text);
  if (!v) throw new DconnectError('BAD_OPTION', `--via '${text}' is not a relay`, 'use --via dc-buffer (direct through a DC buffer, the default), cmb (direct through an SSD\'s Controller Memory Buffer), nearest (direct through the nearest relay of either) or host (conventional, through host memory); a simulated copy between drives also takes both');
  return v;
}

/** `sda:/data/big.bin` -> device and file path (a path after the device means a file); null for a range end (`sda`, `sda:1GiB`). */
export function parseFileEnd(text: string): { device: string; path: string } | null {
  const i = text.indexOf(':');
  if (i < 0 || text[i + 1] !== '/') return null;
  const device = text.slice(0, i);
  if (!device) throw new DconnectError('BAD_OPTION', `'${text}' has no device name`, 'write a file as DEVICE:/PATH, e.g. sda:/data/big.bin');
  return { device, path: text.slice(i + 1) };
}

/** `sda=FILE` (--image, --save) -> device and file. */
export function parseDriveFile(text: string, option: string): { device: string; file: string } {
  const i = text.indexOf('=');
  if (i <= 0 || i === text.length - 1) throw new DconnectError('BAD_OPTION', `${option} '${text}' is not DEVICE=FILE`, `e.g. ${option} sda=src.ext4`);
  return { device: text.slice(0, i), file: text.slice(i + 1) };
}

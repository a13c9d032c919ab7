import { DconnectError } from '../core/errors.js';
import { parseCount, parseSize } from '../core/units.js';
import type { FidelityMode } from '../runtime/copy.js';

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

export function parseVia(text: string): 'dc-buffer' | 'host' {
  if (text !== 'dc-buffer' && text !== 'host') throw new DconnectError('BAD_OPTION', `--via '${text}' is not a path`, "use --via dc-buffer (direct, the default) or --via host (conventional, through host memory)");
  return text;
}

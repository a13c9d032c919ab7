import { DconnectError } from '../core/errors.js';
import { formatBytes, formatTimePs } from '../core/units.js';
import type { FidelityMode } from '../runtime/copy.js';
import type { Granularity } from '../runtime/moves.js';
import { runFileCopy, runListing, type FileCopyReport, type ListingEntry } from '../runtime/files.js';
import type { Topology } from '../topology/schema.js';
import type { JobRequestBody } from '../live/control-api.js';
import { parseFileEnd, parseMoveVia, parseSeed } from './args.js';
import { granularityLines, table } from './format.js';
import { imageOf, saveOf } from './image-files.js';
import { progressBar } from './progress.js';
import { parseMediaError } from '../runtime/faults.js';
import { parseSize } from '../core/units.js';

/** The `copy` options a file copy takes (the others are refused by name, before any work). */
export interface FileCopyOptions {
  depth?: string;
  chunk?: string;
  via: string;
  seed: string;
  image?: string[];
  save?: string[];
  recursive?: boolean;
  force?: boolean;
  json?: boolean;
  length?: string;
  fault?: string[];
  capture?: string;
  live?: boolean;
  fidelity: FidelityMode;
  granularity?: Granularity;
  burstBytes?: string;
}

/**
 * `dconnect copy sda:/path sdb:/path --live`: the job request for the live fabric's host (live/file-job.ts).
 * The fabric's settings (and its drives' file systems, seeded by `up --image`) are the fabric's:
 * options that set up a simulation are refused (by the command, or here by name).
 */
export function liveFileCopyRequest(srcArg: string, dstArg: string, more: string[], o: FileCopyOptions & { verify?: boolean }): JobRequestBody {
  const src = parseFileEnd(srcArg);
  const dst = parseFileEnd(dstArg);
  if (!src || !dst) throw new DconnectError('BAD_OPTION', `a file copy needs a file at both ends ('${srcArg}' -> '${dstArg}')`, 'write both as DEVICE:/PATH, e.g. dconnect copy sda:/data/big.bin sdb:/backup/big.bin --live');
  if (more.length > 0) throw new DconnectError('BAD_OPTION', 'a file copy takes one source and one destination', 'copy a directory with -r instead');
  // --image, --save, --fault, --set, --host-lanes are refused with --live by the copy command itself (cli/commands/copy.ts).
  for (const [flag, v] of [['--length', o.length], ['--capture', o.capture]] as const) {
    if (v !== undefined) throw new DconnectError('BAD_OPTION', `${flag} does not apply to a live file copy`, `drop ${flag}`);
  }
  const depth = o.depth === undefined ? undefined : Number(o.depth);
  if (depth !== undefined && !Number.isInteger(depth)) throw new DconnectError('BAD_OPTION', `--depth '${o.depth}' is not an integer`, 'use 1..64');
  return {
    src: src.device,
    dst: dst.device,
    srcOffset: 0,
    dstOffset: 0,
    lengthBytes: 0,
    via: parseMoveVia(o.via),
    ...(o.chunk ? { chunkBytes: parseSize(o.chunk, '--chunk') } : {}),
    ...(depth !== undefined ? { depth } : {}),
    ...(o.verify === undefined ? {} : { verify: o.verify }),
    files: { srcPath: src.path, dstPath: dst.path, recursive: o.recursive === true, force: o.force === true, nowSec: Math.floor(Date.now() / 1000) },
  };
}

/** `dconnect copy sda:/path sdb:/path`: both ends must be files on drives. */
export function fileCopyAction(topology: Topology, srcArg: string, dstArg: string, more: string[], o: FileCopyOptions): void {
  const src = parseFileEnd(srcArg);
  const dst = parseFileEnd(dstArg);
  if (!src || !dst) throw new DconnectError('BAD_OPTION', `a file copy needs a file at both ends ('${srcArg}' -> '${dstArg}')`, 'write both as DEVICE:/PATH, e.g. dconnect copy sda:/data/big.bin sdb:/backup/big.bin');
  if (more.length > 0) throw new DconnectError('BAD_OPTION', 'a file copy takes one source and one destination', 'copy a directory with -r instead');
  for (const [flag, v] of [['--length', o.length], ['--capture', o.capture]] as const) {
    if (v !== undefined) throw new DconnectError('BAD_OPTION', `${flag} does not apply to a file copy${flag === '--length' ? ': the files decide the length' : ' (no captures of file copies yet)'}`, `drop ${flag}`);
  }
  const cableFaults = (o.fault ?? []).filter((f) => parseMediaError(f) === null);
  if (cableFaults.length > 0) throw new DconnectError('BAD_OPTION', `--fault ${cableFaults[0]}: a file copy takes media-error=DEV:LBA faults only`, 'e.g. --fault media-error=sda:4096');
  const mediaErrors = (o.fault ?? []).map(parseMediaError).filter((m) => m !== null);
  const images = (o.image ?? []).map(imageOf);
  const saves = (o.save ?? []).map(saveOf);
  const depth = o.depth === undefined ? undefined : Number(o.depth);
  if (depth !== undefined && !Number.isInteger(depth)) throw new DconnectError('BAD_OPTION', `--depth '${o.depth}' is not an integer`, 'use 1..64');
  const shown: { bar: { update(v: number): void; stop(): void } | null } = { bar: null };
  let r: FileCopyReport;
  try {
    r = runFileCopy({
      topology,
      src: src.device,
      srcPath: src.path,
      dst: dst.device,
      dstPath: dst.path,
      via: parseMoveVia(o.via),
      seed: parseSeed(o.seed),
      ...(depth !== undefined ? { depth } : {}),
      ...(o.chunk !== undefined ? { chunkBytes: parseSize(o.chunk, '--chunk') } : {}),
      recursive: o.recursive === true,
      force: o.force === true,
      // The CLI may read the wall clock: the new inodes' ctime is now, as cp's is.
      nowSec: Math.floor(Date.now() / 1000),
      images,
      saves,
      mediaErrors,
      ...(o.granularity === 'burst' ? { granularity: o.granularity, ...(o.burstBytes !== undefined ? { burstBytes: parseSize(o.burstBytes, '--burst-bytes') } : {}) } : {}),
      // The data's total is known once the files are resolved: the bar starts with the first run.
      onProgress: (d, total) => (shown.bar ??= progressBar('copy', total, 'bytes', { lines: true })).update(d),
    });
  } finally {
    shown.bar?.stop();
  }
  process.stdout.write((o.json ? JSON.stringify(r) : formatFileCopy(r)) + '\n');
  if (!r.verified) process.exitCode = 3;
}

export function formatFileCopy(r: FileCopyReport): string {
  const meta = r.metadata.readBytes + r.metadata.writtenBytes;
  const link = r.hostLink.upstreamPayloadBytes + r.hostLink.downstreamPayloadBytes;
  const pct = (x: number) => (r.bytes > 0 ? `${((100 * x) / r.bytes).toFixed(3)}% of the files' bytes` : '-');
  const bad = r.checks.filter((c) => !c.verified);
  return [
    `${r.mode} file copy ${r.src}:${r.srcPath} -> ${r.dst}:${r.dstPath}: ${r.files} file${r.files === 1 ? '' : 's'}${r.directories > 0 ? `, ${r.directories} director${r.directories === 1 ? 'y' : 'ies'}` : ''}, ${formatBytes(r.bytes)} (${formatBytes(r.dataBytes)} of data in ${r.runs} run${r.runs === 1 ? '' : 's'}; holes move nothing)`,
    `  time        ${formatTimePs(r.simulatedSeconds * 1e12)} simulated, metadata work included`,
    `  bandwidth   ${r.mbPerSec.toFixed(1)} MB/s of file bytes (relayed by ${r.relay}, ${r.depth} commands in flight, ${formatBytes(r.chunkBytes)} chunks)`,
    `  verified    ${bad.length === 0 ? 'yes: every file read back through both file systems and equal' : `NO: ${bad.map((c) => `${c.dstPath} (${c.problem})`).join(', ')}`}`,
    `  metadata    ${formatBytes(r.metadata.readBytes)} read, ${formatBytes(r.metadata.writtenBytes)} written through host memory (${r.metadata.commands} commands)`,
    `  host link   ${formatBytes(link)} payload (${pct(link)}): ${formatBytes(meta)} metadata, ${formatBytes(r.hostLinkOtherBytes)} commands, completions${r.mode === 'conventional' ? ' and the data' : ''}`,
    ...granularityLines(r.granularity),
    ...(r.skipped.length > 0 ? [`  skipped     ${r.skipped.length} entries neither file nor directory: ${r.skipped.slice(0, 5).join(', ')}${r.skipped.length > 5 ? ', ...' : ''}`] : []),
    `  seed        ${r.seed}`,
  ].join('\n');
}

/** `dconnect ls sda:/dir`: name, size and extents of each entry, read through the host's file system code. */
export function lsAction(topology: Topology, target: string, o: { image?: string[]; seed: string; json?: boolean }): void {
  const end = parseFileEnd(target);
  if (!end) throw new DconnectError('BAD_OPTION', `'${target}' names no path`, 'write it as DEVICE:/PATH, e.g. dconnect ls sda:/ --image sda=src.ext4');
  const r = runListing({ topology, device: end.device, path: end.path, seed: parseSeed(o.seed), images: (o.image ?? []).map(imageOf) });
  if (o.json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const extentsText = (e: ListingEntry) => (e.type !== 'file' ? '' : e.extents.length === 0 ? '(no blocks)' : `${e.extents.length}: ${e.extents.slice(0, 3).map((x) => `${x.logical}+${x.length}@${x.physical}${x.unwritten ? ' unwritten' : ''}`).join(', ')}${e.extents.length > 3 ? ', ...' : ''}`);
  process.stdout.write(table(['NAME', 'TYPE', 'SIZE', 'EXTENTS (file block+blocks@fs block)'], r.entries.map((e) => [e.name, e.type, String(e.sizeBytes), extentsText(e)])) + '\n');
}

import { DconnectError } from '../core/errors.js';
import { parseSize } from '../core/units.js';
import { checkNicMove, isNetEnd, nicMoveFaults, runNicMove, type NicMoveRequest } from '../runtime/nic-moves.js';
import type { Topology } from '../topology/schema.js';
import { parseDeviceRange, parseMoveVia, parseSeed } from './args.js';
import { openCapture } from './capture-file.js';
import { capturedOn, faultsLine, formatNicMove } from './format.js';
import { progressBar } from './progress.js';

interface NicCopyOptions {
  length?: string;
  depth?: string;
  chunk?: string;
  via: string;
  seed: string;
  fidelity: string;
  fault?: string[];
  capture?: string;
  pcap?: string;
  host?: string;
  json?: boolean;
  /** Whether the user gave --fidelity: NIC moves run at full fidelity unless --fidelity fast is given. */
  fidelityGiven?: boolean;
}

/** The end of a NIC move as the runtime takes it: `net:client0` as is, a drive with its offset. */
function endOf(text: string, role: string): { name: string; offset: number } {
  if (isNetEnd(text)) {
    if (text.includes(':', 4)) throw new DconnectError('BAD_OPTION', `${role} '${text}': a client takes no offset (a stream starts at its beginning)`, `name it as ${text.slice(0, text.indexOf(':', 4))}`);
    return { name: text, offset: 0 };
  }
  const d = parseDeviceRange(text, role);
  return { name: d.device, offset: d.offset };
}

/**
 * `dconnect copy` with a client at one end or both (issue 9): sda net:client0 (serve), net:client0 sdb
 * (ingest), net:client0 net:client1 (pipeline), direct through the DC buffer or via host memory.
 */
export function nicCopyAction(topology: Topology, srcArg: string, dstArg: string, more: string[], o: NicCopyOptions): void {
  if (more.length > 0) throw new DconnectError('BAD_OPTION', 'a move through a NIC is one pair', 'give one source and one destination');
  if (o.length === undefined) throw new DconnectError('BAD_OPTION', 'copy needs --length', 'e.g. --length 64MiB');
  if (o.fidelity !== 'fast' && o.fidelity !== 'full') throw new DconnectError('BAD_OPTION', `--fidelity '${o.fidelity}' is not fast or full`, 'use --fidelity fast or --fidelity full');
  // Full unless asked: a NIC move's fast path is opt-in (serve and ingest; a pipeline runs in full).
  const fidelity = o.fidelityGiven ? o.fidelity : 'full';
  const src = endOf(srcArg, 'source');
  const dst = endOf(dstArg, 'destination');
  const lengthBytes = parseSize(o.length, '--length');
  const depth = o.depth === undefined ? undefined : Number(o.depth);
  if (depth !== undefined && !Number.isInteger(depth)) throw new DconnectError('BAD_OPTION', `--depth '${o.depth}' is not an integer`, 'use 1..64');
  const req: NicMoveRequest = {
    topology,
    src: src.name,
    dst: dst.name,
    srcOffset: src.offset,
    dstOffset: dst.offset,
    lengthBytes,
    ...(depth !== undefined ? { depth } : {}),
    ...(o.chunk !== undefined ? { chunkBytes: parseSize(o.chunk, '--chunk') } : {}),
    via: parseMoveVia(o.via),
    seed: parseSeed(o.seed),
    fidelity,
    ...(o.host ? { host: o.host } : {}),
  };
  // The capture file is written as the move runs: the request is checked first, so a bad one writes nothing.
  if (o.capture !== undefined || o.pcap !== undefined) checkNicMove(req);
  // Cable faults on ExpEther's cables (a NIC network's carry no retransmission and are left out);
  // laid here, under the capture, which records what the faulty cables delivered.
  const faults = o.fault?.length ? nicMoveFaults(topology, o.fault, req.seed) : null;
  const capture = openCapture(topology, o.capture, o.pcap, faults?.connect ?? undefined);
  const bar = progressBar('copy', lengthBytes, 'bytes', { lines: true });
  try {
    const connect = capture?.connect ?? faults?.connect;
    const r = runNicMove({ ...req, ...(connect ? { connect } : {}), ...(faults ? { onStart: faults.start } : {}), onProgress: (d) => bar.update(d) });
    bar.update(req.lengthBytes);
    bar.stop();
    if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
    else process.stdout.write(formatNicMove(r) + '\n');
    if (!r.verified) process.exitCode = 3;
    if (faults) process.stderr.write(faultsLine(faults.report()) + '\n');
    if (capture) {
      const c = capture.close();
      process.stderr.write(`captured ${c.frames} frames on ${capturedOn(c.perLink)} into ${c.path}\n`);
    }
  } finally {
    bar.stop();
  }
}

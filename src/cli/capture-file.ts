import { closeSync, openSync, writeSync } from 'node:fs';
import { DconnectError } from '../core/errors.js';
import { captureConnect, captureFormat } from '../runtime/capture.js';
import { pcapFileHeader, pcapRecord } from '../runtime/pcap.js';
import { pcapngInterface, pcapngPacket, pcapngSectionHeader } from '../runtime/pcapng.js';
import { checkOutputFile } from './output-paths.js';
import type { ConnectFn } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';

/** Bytes buffered before a write to the file: bounds memory however many frames a capture holds. */
const BUFFER_BYTES = 1 << 20;

/**
 * `copy --capture LINK[,LINK...] --pcap FILE`: a channel factory that captures the named links into
 * FILE (pcapng, one interface per link, when FILE ends in .pcapng; else pcap, one link) as they are simulated (written in 1 MiB pieces), and `close` to finish the file.
 */
export function openCapture(topology: Topology, capture: string | undefined, pcap: string | undefined, inner?: ConnectFn): { connect: ConnectFn; close: () => { frames: number; path: string; perLink: [string, number][] } } | null {
  if (capture === undefined && pcap === undefined) return null;
  if (capture === undefined || pcap === undefined) throw new Error('the copy command declares that --capture and --pcap go together');
  const links = capture.split(',').map((l) => l.trim()).filter((l) => l.length > 0);
  if (links.length === 0) throw new DconnectError('BAD_OPTION', '--capture names no link', 'dconnect links lists them, e.g. --capture host,box0.slot2');
  checkOutputFile(pcap, '--pcap');
  // pcapng names each cable (one interface each); classic pcap has no interfaces, so it takes one cable.
  const ng = captureFormat(pcap, links) === 'pcapng';
  let frames = 0;
  const perLink = new Map(links.map((l) => [l, 0]));
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let fd: number | null = null;
  // The file is created at the first write (1 MiB of frames, or the end): a request refused before
  // its move starts (a bad offset, a bad length) leaves no file behind.
  const flush = () => {
    if (fd === null) {
      fd = openSync(pcap, 'w');
      if (ng) for (const b of [pcapngSectionHeader(), ...links.map(pcapngInterface)]) writeSync(fd, b);
      else writeSync(fd, pcapFileHeader());
    }
    for (const p of pending) writeSync(fd, p);
    pending = [];
    pendingBytes = 0;
  };
  const connect = captureConnect(topology, links, (link, timePs, frame) => {
    const rec = ng ? pcapngPacket(links.indexOf(link), timePs, frame) : pcapRecord(timePs, frame);
    frames++;
    perLink.set(link, (perLink.get(link) ?? 0) + 1);
    pending.push(rec);
    pendingBytes += rec.length;
    if (pendingBytes >= BUFFER_BYTES) flush();
  }, inner);
  return {
    connect,
    close: () => {
      connect.flush();
      flush();
      closeSync(fd!);
      fd = null;
      return { frames, path: pcap, perLink: [...perLink] };
    },
  };
}

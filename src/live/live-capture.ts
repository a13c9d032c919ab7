/**
 * Live captures (`copy --live --capture host --pcap FILE`): the frames the host node sends and
 * receives on its crossing cables, as the PDU codec's bytes, into a nanosecond pcap stamped with the
 * wall clock (Unix time), while a job runs. The host node sees only its own cables (with one box, the
 * `host` cable); a box's internal links are in the box's process. Written in 1 MiB pieces, so memory
 * stays bounded however long the job.
 */
import { closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { openNewPrivateFile } from './state-dir.js';
import { boxClient } from './control-client.js';
import { captureFormat } from '../runtime/capture.js';
import { pcapFileHeader, pcapRecordAt } from '../runtime/pcap.js';
import { pcapngInterface, pcapngPacketAt, pcapngSectionHeader } from '../runtime/pcapng.js';

const BUFFER_BYTES = 1 << 20;

/**
 * One node's part of a live capture: a classic pcap per captured link (`<prefix>.<link>.part`), so the
 * merge knows which cable every frame was on (pcapng names them).
 */
export class LiveCapture {
  frames = 0;
  private readonly parts = new Map<string, { fd: number; pending: Uint8Array[]; pendingBytes: number }>();

  constructor(
    /** The parts' common prefix (a path in the state directory's captures/). */
    readonly path: string,
    links: string[],
  ) {
    try {
      for (const l of links) {
        const fd = openNewPrivateFile(partPath(path, l)); // 0600, never replacing a file or following a symlink
        this.parts.set(l, { fd, pending: [], pendingBytes: 0 });
        writeSync(fd, pcapFileHeader());
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** The transport's tap: keeps the frames of the captured links. */
  readonly tap = (cable: string, frame: Uint8Array): void => {
    const part = this.parts.get(cable);
    if (!part) return;
    const ms = performance.timeOrigin + performance.now();
    const seconds = Math.floor(ms / 1000);
    const rec = pcapRecordAt(seconds, Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6)), frame);
    this.frames++;
    part.pending.push(rec);
    part.pendingBytes += rec.length;
    if (part.pendingBytes >= BUFFER_BYTES) flushPart(part);
  };

  close(): { frames: number; path: string } {
    for (const part of this.parts.values()) {
      flushPart(part);
      closeSync(part.fd);
    }
    this.parts.clear();
    return { frames: this.frames, path: this.path };
  }
}

/** Where a node keeps one link's part of a capture. */
function partPath(prefix: string, link: string): string {
  return `${prefix}.${link}.part`;
}

function flushPart(part: { fd: number; pending: Uint8Array[]; pendingBytes: number }): void {
  for (const p of part.pending) writeSync(part.fd, p);
  part.pending = [];
  part.pendingBytes = 0;
}

/** Where each link's frames are seen live: the host node (its crossing cables) or a box node (its own cables). */
export interface CaptureRoute {
  /** Links the host node records (through its transport's tap). */
  host: string[];
  /** Links each box node records, by box. */
  boxes: Map<string, string[]>;
}

/**
 * A job's capture over several nodes: the host's part and each box's part (asked for over the box's
 * control socket) are written apart, then merged by time into the one file when the job ends.
 */
export class JobCapture {
  private constructor(
    private readonly path: string,
    private readonly route: CaptureRoute,
    private readonly host: LiveCapture | null,
    private readonly boxes: { box: string; socket: string; part: string }[],
    private readonly untap: () => void,
  ) {}

  static async start(o: { path: string; route: CaptureRoute; setTap: (tap: ((cable: string, frame: Uint8Array) => void) | null) => void; boxSocket: (box: string) => string }): Promise<JobCapture> {
    const host = o.route.host.length > 0 ? new LiveCapture(`${o.path}.host`, o.route.host) : null;
    if (host) o.setTap(host.tap);
    const boxes: { box: string; socket: string; part: string }[] = [];
    try {
      for (const [box, links] of o.route.boxes) {
        const socket = o.boxSocket(box);
        const part = `${o.path}.${box}`;
        // The box writes into its own state directory's captures/ (the same folder on one machine): it is told a name.
        await boxClient(socket).capture({ links, name: basename(part) }, { timeoutMs: 10_000 });
        boxes.push({ box, socket, part });
      }
    } catch (e) {
      o.setTap(null);
      host?.close();
      throw e;
    }
    return new JobCapture(o.path, o.route, host, boxes, () => o.setTap(null));
  }

  private stopping: Promise<{ frames: number; path: string }> | null = null;

  /** Stops every part and merges them by time into the file; returns the frames written. Once: a second call gets the first's answer. */
  stop(): Promise<{ frames: number; path: string }> {
    return (this.stopping ??= this.stopAndMerge());
  }

  private async stopAndMerge(): Promise<{ frames: number; path: string }> {
    this.untap();
    const parts: { link: string; path: string }[] = [];
    if (this.host) {
      this.host.close();
      for (const link of this.route.host) parts.push({ link, path: partPath(this.host.path, link) });
    }
    for (const b of this.boxes) {
      await boxClient(b.socket).captureStop({ timeoutMs: 10_000 }).catch(() => {}); // a dead box's part is what it wrote
      for (const link of this.route.boxes.get(b.box) ?? []) parts.push({ link, path: partPath(b.part, link) });
    }
    // Merged in memory (a capture is of one job): records ordered by their stamps, each on its cable's interface.
    const links = parts.map((p) => p.link);
    const recs: { sec: number; ns: number; iface: number; bytes: Uint8Array }[] = [];
    for (const [iface, p] of parts.entries()) {
      let file: Uint8Array;
      try {
        file = new Uint8Array(readFileSync(p.path));
      } catch {
        continue; // a part never written (its node died first)
      }
      const v = new DataView(file.buffer, file.byteOffset, file.length);
      for (let at = 24; at + 16 <= file.length; ) {
        const len = v.getUint32(at + 8, true);
        if (at + 16 + len > file.length) break; // a part cut short by a dying node: what is whole counts
        recs.push({ sec: v.getUint32(at, true), ns: v.getUint32(at + 4, true), iface, bytes: file.subarray(at, at + 16 + len) });
        at += 16 + len;
      }
    }
    recs.sort((a, b) => a.sec - b.sec || a.ns - b.ns);
    const all =
      captureFormat(this.path, links) === 'pcapng'
        ? [pcapngSectionHeader(), ...links.map(pcapngInterface), ...recs.map((r) => pcapngPacketAt(r.iface, r.sec, r.ns, r.bytes.subarray(16)))]
        : [pcapFileHeader(), ...recs.map((r) => r.bytes)];
    const out = new Uint8Array(all.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of all) {
      out.set(b, at);
      at += b.length;
    }
    const fd = openNewPrivateFile(this.path);
    try {
      for (let off = 0; off < out.length; ) off += writeSync(fd, out, off, out.length - off);
    } finally {
      closeSync(fd);
    }
    for (const p of parts) rmSync(p.path, { force: true });
    return { frames: recs.length, path: this.path };
  }
}

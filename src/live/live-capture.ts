/**
 * Live captures (`copy --live --capture host --pcap FILE`): the frames the host node sends and
 * receives on its crossing cables, as the PDU codec's bytes, into a nanosecond pcap stamped with the
 * wall clock (Unix time), while a job runs. The host node sees only its own cables (with one box, the
 * `host` cable); a box's internal links are in the box's process. Written in 1 MiB pieces, so memory
 * stays bounded however long the job.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { pcapFileHeader, pcapRecordAt } from '../runtime/pcap.js';

const BUFFER_BYTES = 1 << 20;

export class LiveCapture {
  frames = 0;
  private fd: number;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private readonly links: Set<string>;

  constructor(
    readonly path: string,
    links: string[],
  ) {
    this.links = new Set(links);
    this.fd = openSync(path, 'w');
    writeSync(this.fd, pcapFileHeader());
  }

  /** The transport's tap: keeps the frames of the captured links. */
  readonly tap = (cable: string, frame: Uint8Array): void => {
    if (!this.links.has(cable)) return;
    const ms = performance.timeOrigin + performance.now();
    const seconds = Math.floor(ms / 1000);
    const rec = pcapRecordAt(seconds, Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6)), frame);
    this.frames++;
    this.pending.push(rec);
    this.pendingBytes += rec.length;
    if (this.pendingBytes >= BUFFER_BYTES) this.flush();
  };

  private flush(): void {
    for (const p of this.pending) writeSync(this.fd, p);
    this.pending = [];
    this.pendingBytes = 0;
  }

  close(): { frames: number; path: string } {
    this.flush();
    closeSync(this.fd);
    return { frames: this.frames, path: this.path };
  }
}

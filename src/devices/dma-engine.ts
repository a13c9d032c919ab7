import type { StateDigest } from '../core/digest.js';
import { LevelTimer } from '../core/level-timer.js';
import { Ring } from '../core/ring.js';
import type { Scheduler } from '../core/scheduler.js';
import type { PciePort } from '../pcie/link.js';
import { CPL_STATUS, digestTlp, Tlp } from '../pcie/tlp.js';
import { asBurst, MAX_READ_BURST_REQUESTS, readBurst, readSet, requestAt, sliceBurst, splitParts } from '../pcie/burst.js';

export interface DmaParams {
  /** Max payload size programmed in the device (bytes per MWr). */
  mpsBytes: number;
  /** Max read request size programmed in the device (bytes per MRd). */
  mrrsBytes: number;
  /** Read requests the device may have outstanding at once (its tag pool). */
  maxReadTags: number;
}

export interface DmaSegment {
  address: number;
  lengthBytes: number;
}

/** TLPs may not cross a 4 KiB address boundary (PCIe Base Spec 2.2.7). */
const BOUNDARY = 4096;

interface WriteJob {
  address: number;
  data: Uint8Array;
  offset: number;
  done: (() => void) | null;
}

interface ReadJob {
  segments: DmaSegment[];
  buf: Uint8Array;
  seg: number;
  segOffset: number;
  issued: number;
  received: number;
  failed: boolean;
  cb: (data: Uint8Array | null) => void;
  /** When the read was asked for, ps: at burst granularity, no request of it goes out earlier. */
  askedPs: number;
}


/**
 * A device's bus-master DMA engine: writes become MWr TLPs of at most MPS bytes, reads become MRd
 * TLPs of at most MRRS bytes with a bounded pool of tags; nothing crosses a 4 KiB boundary. Both queues
 * are pumped while the PCIe port accepts, so link back-pressure stalls the engine.
 */
export class DmaEngine {
  private readonly writes = new Ring<WriteJob>();
  private readonly reads = new Ring<ReadJob>();
  /** Per tag: the read it serves (null when free), where its data goes in the job's buffer, bytes received of how many. */
  private readonly tagJob: (ReadJob | null)[];
  private readonly tagBufOffset: Float64Array;
  private readonly tagReceived: Float64Array;
  private readonly tagLength: Float64Array;
  /**
   * Free tags. Per TLP, a stack (the last freed goes first). At burst granularity, ordered by when
   * each was freed, latest first (ties: higher tag first), kept so on insertion (`finishTag`) rather
   * than sorted at each MRd burst (a sort of up to 256 tags per burst of two requests). A port's
   * `burstBytes` is set once, by the builder, before anything runs: the two orders never mix.
   */
  private freeTags: number[];
  /** Per tag: when it was last freed, ps (the arrival of its request's last completion). */
  private readonly tagFreedPs: Float64Array;
  private blockedWrite: Tlp | null = null;
  private blockedWriteDone: (() => void) | null = null;
  private pumping = false;
  private pumpAgain = false;
  private blockedRead: Tlp | null = null;
  readonly counters = { mwr: 0, mrd: 0, bytesWritten: 0, bytesRead: 0, tagStalls: 0 };
  /** Read tags in use over time: its integral over mrd is the mean read round trip (Little's law). */
  private readonly tagsInUse: LevelTimer;
  /** 1 while a read waits for a tag with every tag in use: the read-tag window binds. */
  private readonly tagsExhausted: LevelTimer;

  constructor(
    private readonly port: PciePort,
    private readonly requesterId: () => number,
    readonly params: DmaParams,
    private readonly clock: Pick<Scheduler, 'now'>,
  ) {
    this.tagsInUse = new LevelTimer(clock);
    this.tagsExhausted = new LevelTimer(clock);
    this.tagJob = Array.from({ length: params.maxReadTags }, () => null);
    this.tagBufOffset = new Float64Array(params.maxReadTags);
    this.tagReceived = new Float64Array(params.maxReadTags);
    this.tagLength = new Float64Array(params.maxReadTags);
    this.tagFreedPs = new Float64Array(params.maxReadTags);
    this.freeTags = [];
    for (let t = params.maxReadTags - 1; t >= 0; t--) this.freeTags.push(t);
  }

  /** Posted write of `data` at `address`; `done` runs once the last TLP is handed to the link. */
  write(address: number, data: Uint8Array, done: (() => void) | null = null): void {
    this.writes.push({ address, data, offset: 0, done });
    this.pump();
  }

  /** Reads the segments into one buffer; `cb(null)` if any completion reports an error. */
  read(segments: DmaSegment[], cb: (data: Uint8Array | null) => void): void {
    let total = 0;
    for (const s of segments) total += s.lengthBytes;
    this.reads.push({ segments, buf: new Uint8Array(total), seg: 0, segOffset: 0, issued: 0, received: 0, failed: false, cb, askedPs: this.clock.now() });
    this.pump();
  }

  /**
   * The counters with the time integrals up to now: readTagPs (tags in use x ps; over mrd, the mean
   * read round trip from tag taken to last completion in) and tagsExhaustedPs (time a read waited for
   * a tag with all maxReadTags in use).
   */
  snapshot(): Record<string, number> {
    return { ...this.counters, readTagPs: this.tagsInUse.readPs(), tagsExhaustedPs: this.tagsExhausted.readPs() };
  }

  /**
   * Queued writes and reads (what is left of each, where it starts in its 4 KiB page, whom it calls
   * back), and the outstanding read tags in the order of the reads they serve (tag numbers are labels).
   */
  digest(d: StateDigest): void {
    d.num(this.writes.length);
    for (let i = 0; i < this.writes.length; i++) {
      const w = this.writes.at(i)!;
      d.num(w.data.length - w.offset);
      d.num((w.address + w.offset) % BOUNDARY);
      d.callback(w.done);
    }
    const jobs: ReadJob[] = [];
    for (let i = 0; i < this.reads.length; i++) jobs.push(this.reads.at(i)!);
    for (const j of this.tagJob) if (j && !jobs.includes(j)) jobs.push(j);
    d.num(jobs.length);
    for (const j of jobs) {
      d.num(j.buf.length);
      d.num(j.issued);
      d.num(j.received);
      d.flag(j.failed);
      for (let s = j.seg; s < j.segments.length; s++) {
        const off = s === j.seg ? j.segOffset : 0;
        d.num(j.segments[s].lengthBytes - off);
        d.num((j.segments[s].address + off) % BOUNDARY);
      }
      d.callback(j.cb);
      const tags: number[] = [];
      for (let t = 0; t < this.tagJob.length; t++) if (this.tagJob[t] === j) tags.push(t);
      tags.sort((a, b) => this.tagBufOffset[a] - this.tagBufOffset[b]);
      d.num(tags.length);
      for (const t of tags) {
        d.num(this.tagBufOffset[t]);
        d.num(this.tagReceived[t]);
        d.num(this.tagLength[t]);
      }
    }
    d.num(this.freeTags.length);
    if (this.blockedWrite) digestTlp(d, this.blockedWrite);
    d.callback(this.blockedWriteDone);
    if (this.blockedRead) digestTlp(d, this.blockedRead);
  }

  /** Feeds a completion for one of this engine's reads; false if it is not ours. */
  completion(tlp: Tlp): boolean {
    if (tlp.reads !== null) return this.readsCompletion(tlp);
    const tag = tlp.tag;
    const job = this.tagJob[tag];
    if (!job || tlp.requesterId !== this.requesterId()) return false;
    const length = this.tagLength[tag];
    if (tlp.status !== CPL_STATUS.SC || !tlp.data) {
      job.failed = true;
      this.tagReceived[tag] = length;
    } else {
      job.buf.set(tlp.data, this.tagBufOffset[tag] + this.tagReceived[tag]);
      this.tagReceived[tag] += tlp.data.length;
    }
    if (this.tagReceived[tag] >= length) {
      const arrived = tlp.readyPs;
      this.finishTag(tag, arrived ? arrived[arrived.length - 1] : this.clock.now());
      this.pump();
    }
    return true;
  }

  /**
   * A completion burst answering several of this engine's requests (pcie/burst.ts): each request's
   * bytes go to its tag's place, and a tag whose request is complete is free from the arrival of its
   * last completion (so a read burst issued now may start then, as per-TLP's next request would have).
   */
  private readsCompletion(tlp: Tlp): boolean {
    const r = tlp.reads!;
    const data = tlp.data!;
    const first = this.tagJob[r.tags[requestAt(r, tlp.readsOffsetBytes)]];
    if (!first || tlp.requesterId !== this.requesterId()) return false;
    const arrived = tlp.readyPs;
    const parts = tlp.parts!;
    const base = tlp.readsOffsetBytes;
    let c = 0;
    let cEnd = parts[0];
    for (let at = base; at < base + data.length; ) {
      const j = requestAt(r, at);
      const tag = r.tags[j];
      const job = this.tagJob[tag];
      const piece = Math.min(base + data.length, r.ends[j]) - at;
      if (!job) throw new Error(`DMA engine: a completion burst for tag ${tag}, which has no read outstanding`);
      job.buf.set(data.subarray(at - base, at - base + piece), this.tagBufOffset[tag] + this.tagReceived[tag]);
      this.tagReceived[tag] += piece;
      at += piece;
      if (this.tagReceived[tag] >= this.tagLength[tag]) {
        while (cEnd < at - base && c < parts.length - 1) cEnd += parts[++c];
        this.finishTag(tag, arrived ? arrived[c] : this.clock.now());
      }
    }
    this.pump();
    return true;
  }

  /** Tag `tag`'s request is complete (its last completion arrived at `atPs`): the tag is free, and its read done if that was the last. */
  private finishTag(tag: number, atPs: number): void {
    const job = this.tagJob[tag]!;
    this.tagJob[tag] = null;
    this.tagFreedPs[tag] = atPs;
    if (this.port.burstBytes > 0) this.insertFree(tag);
    else this.freeTags.push(tag);
    this.tagsInUse.set(this.params.maxReadTags - this.freeTags.length);
    this.tagsExhausted.set(0);
    job.received += this.tagLength[tag];
    if (job.received === job.buf.length) job.cb(job.failed ? null : job.buf);
  }

  /** Burst granularity: puts a freed tag in its place in `freeTags` (latest freed first; usually the front). */
  private insertFree(tag: number): void {
    const free = this.freeTags;
    const t = this.tagFreedPs[tag];
    // The first index whose tag was freed earlier than this one (or at the same time, with a lower number).
    let lo = 0;
    let hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const x = free[mid];
      const tx = this.tagFreedPs[x];
      if (tx > t || (tx === t && x > tag)) lo = mid + 1;
      else hi = mid;
    }
    free.splice(lo, 0, tag);
  }

  /** Sends as many TLPs as the port accepts, writes first (posted traffic carries the data out). */
  pump(): void {
    // Completion callbacks may queue more work; they re-enter here, so run one loop at a time.
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    do {
      this.pumpAgain = false;
      while (this.pumpWrite());
      while (this.pumpRead());
    } while (this.pumpAgain);
    this.pumping = false;
  }

  private pumpWrite(): boolean {
    if (this.blockedWrite) {
      if (!this.sendWrite(this.blockedWrite)) return false;
      this.blockedWrite = null;
      const done = this.blockedWriteDone;
      this.blockedWriteDone = null;
      done?.();
    }
    const job = this.writes.peek();
    if (!job) return false;
    const addr = job.address + job.offset;
    const burst = this.port.burstBytes; // burst granularity: constituents split exactly as one TLP at a time
    const n = burst > 0 ? Math.min(burst, job.data.length - job.offset) : Math.min(this.params.mpsBytes, job.data.length - job.offset, BOUNDARY - (addr % BOUNDARY));
    const tlp = Tlp.memWrite(this.requesterId(), addr, job.data.subarray(job.offset, job.offset + n));
    if (burst > 0) asBurst(tlp, splitParts(addr, n, this.mwrBytes));
    job.offset += n;
    this.counters.mwr += tlp.count;
    this.counters.bytesWritten += n;
    const last = job.offset >= job.data.length;
    if (last) this.writes.shift();
    if (!this.sendWrite(tlp)) {
      this.blockedWriteDone = last ? job.done : null;
      return false;
    }
    if (last) job.done?.();
    return true;
  }

  /**
   * Hands a write to the port, or keeps what it refused as `blockedWrite` (false). A burst goes as far
   * as per-TLP's transmit queue would have taken its TLPs (`offer`); the rest waits here, as per-TLP's
   * engine holds its next TLP until a place frees, and each constituent handed over later is ready
   * when its place came free (`offer`'s `readyWhenFreed`). So the engine finishes a write when per-TLP's would,
   * and what it queues next (a completion entry) goes behind what per-TLP's had queued by then.
   */
  private sendWrite(tlp: Tlp): boolean {
    if (this.port.burstBytes === 0) {
      if (this.port.send(tlp)) return true;
      this.blockedWrite = tlp;
      return false;
    }
    const taken = this.port.offer(tlp, this.blockedWrite === tlp);
    if (taken === tlp.count) return true;
    this.blockedWrite = taken === 0 ? tlp : sliceBurst(tlp, taken, tlp.count);
    return false;
  }

  /**
   * Burst granularity: the requests per-TLP would issue back to back for this read, one per free tag
   * (the earliest freed first), up to MAX_READ_BURST_REQUESTS and the run's burst size, within one
   * segment, as one MRd burst.
   * Each request goes no earlier than its tag was freed and the read was asked for.
   */
  private pumpReadBurst(job: ReadJob): boolean {
    const seg = job.segments[job.seg];
    const start = seg.address + job.segOffset;
    const high = start >= 2 ** 32; // requests on both sides of 4 GiB have different headers: not one burst
    const lens: number[] = [];
    let total = 0;
    while (lens.length < MAX_READ_BURST_REQUESTS && lens.length < this.freeTags.length && job.segOffset + total < seg.lengthBytes && total < this.port.burstBytes) {
      const a = start + total;
      if (a >= 2 ** 32 !== high) break;
      const n = Math.min(this.params.mrrsBytes, seg.lengthBytes - job.segOffset - total, BOUNDARY - (a % BOUNDARY));
      lens.push(n);
      total += n;
    }
    const k = lens.length;
    // The k earliest freed tags, in the order they were freed (freeTags is kept latest first).
    const free = this.freeTags;
    const tags = free.splice(free.length - k, k).reverse();
    const ready = new Float64Array(k);
    for (let i = 0, off = job.issued; i < k; off += lens[i++]) {
      const tag = tags[i];
      this.tagJob[tag] = job;
      this.tagBufOffset[tag] = off;
      this.tagReceived[tag] = 0;
      this.tagLength[tag] = lens[i];
      ready[i] = Math.max(this.tagFreedPs[tag], job.askedPs);
    }
    this.tagsInUse.set(this.params.maxReadTags - free.length);
    job.issued += total;
    job.segOffset += total;
    if (job.segOffset >= seg.lengthBytes) {
      job.seg++;
      job.segOffset = 0;
    }
    this.counters.mrd += k;
    this.counters.bytesRead += total;
    const tlp = readBurst(this.requesterId(), readSet(start, tags, lens));
    tlp.readyPs = ready;
    if (!this.port.send(tlp)) {
      this.blockedRead = tlp;
      return false;
    }
    return true;
  }

  /** One MWr's payload from `address` with `restBytes` to go: at most MPS, never across 4 KiB. */
  private readonly mwrBytes = (address: number, restBytes: number): number => Math.min(this.params.mpsBytes, restBytes, BOUNDARY - (address % BOUNDARY));

  private pumpRead(): boolean {
    if (this.blockedRead) {
      if (!this.port.send(this.blockedRead)) return false;
      this.blockedRead = null;
    }
    let job = this.reads.peek();
    while (job && job.issued >= job.buf.length) {
      this.reads.shift();
      job = this.reads.peek();
    }
    if (!job) return false;
    if (this.freeTags.length === 0) {
      this.counters.tagStalls++;
      this.tagsExhausted.set(1);
      return false;
    }
    if (this.port.burstBytes > 0) return this.pumpReadBurst(job);
    const seg = job.segments[job.seg];
    const addr = seg.address + job.segOffset;
    const n = Math.min(this.params.mrrsBytes, seg.lengthBytes - job.segOffset, BOUNDARY - (addr % BOUNDARY));
    const tag = this.freeTags.pop()!;
    this.tagsInUse.set(this.params.maxReadTags - this.freeTags.length);
    this.tagJob[tag] = job;
    this.tagBufOffset[tag] = job.issued;
    this.tagReceived[tag] = 0;
    this.tagLength[tag] = n;
    job.issued += n;
    job.segOffset += n;
    if (job.segOffset >= seg.lengthBytes) {
      job.seg++;
      job.segOffset = 0;
    }
    this.counters.mrd++;
    this.counters.bytesRead += n;
    const tlp = Tlp.memRead(this.requesterId(), tag, addr, n);
    if (!this.port.send(tlp)) {
      this.blockedRead = tlp;
      return false;
    }
    return true;
  }
}

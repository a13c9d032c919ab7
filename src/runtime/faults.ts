/**
 * Faults on cables (issue "Proof of path and faults"), seeded and reproducible: `--fault
 * loss=1%,reorder=1%,dup=0.5%,corrupt=0.1%` on every cable, or `...@LINK` on one (names as
 * `dconnect links` gives them). Each frame a faulty cable carries draws once from the cable's own
 * stream (derived from the run's seed and the cable's name, as every component's stream is) and is
 * - lost: it never arrives;
 * - corrupted: it arrives with a bad FCS, which the receiving MAC drops (so: lost, counted apart);
 * - duplicated: it arrives twice;
 * - reordered: it arrives late enough for the frames sent after it to overtake it;
 * or passes unharmed. Two more faults are not drawn but scheduled: `down=START+DURATION` takes the
 * cable down (every frame either way is lost) from START after the move begins, for DURATION; and
 * `buffer=SIZE` shrinks the output buffers of the ports at both ends, so they overflow under load
 * (a switch's output buffer overflowing drops frames, which Ethernet does). The bridges' reliable delivery (go-back-N, retransmission, duplicate
 * suppression) must make every move complete verified anyway; test/integration/fault-campaign
 * checks 200 seeded mixes.
 */
import { DconnectError } from '../core/errors.js';
import { parseSize, parseTime } from '../core/units.js';
import type { StateDigest } from '../core/digest.js';
import { RngFactory, type RngStream } from '../core/rng.js';
import { MAX_PAYLOAD_BYTES, wireBytes, type Frame } from '../ethernet/frame.js';
import { CableChannel, type EthPort } from '../ethernet/port.js';
import { splitAtHits } from '../expether/burst-frames.js';
import { buildFabric, connectCable, type ConnectFn } from '../topology/builder.js';
import { checkLinks, linkName } from './capture.js';
import type { Topology } from '../topology/schema.js';

export const FAULT_KINDS = ['loss', 'corrupt', 'dup', 'reorder'] as const;
/**
 * Every form `--fault` takes, in the order help and README list them: the one table `copy --help`
 * and `up --help` are written from (test/cli/help-readme.test.ts holds the README to it).
 */
export const FAULT_FORMS = [
  { name: 'loss', form: 'loss=RATE', example: 'loss=1%', what: 'frames lost' },
  { name: 'reorder', form: 'reorder=RATE', example: 'reorder=1%', what: 'overtaken by later ones' },
  { name: 'dup', form: 'dup=RATE', example: 'dup=0.5%', what: 'duplicated' },
  { name: 'corrupt', form: 'corrupt=RATE', example: 'corrupt=0.1%', what: 'corrupted, dropped by the FCS' },
  { name: 'down', form: 'down=START+DURATION', example: 'down=2ms+500us@host', what: 'the link down from START for DURATION' },
  { name: 'buffer', form: 'buffer=SIZE', example: 'buffer=1600@box0.slot2', what: "a port's output buffer shrunk, so it overflows" },
  { name: 'media-error', form: 'media-error=DRIVE:LBA[:write]', example: 'media-error=sdb:2048', what: 'a bad block: reads (or writes) of it fail' },
  { name: 'store-error', form: 'store-error=DRIVE:LBA[:write]', example: 'store-error=sdb:2048', what: "live: the drive's file fails to read (or write) that block, EIO" },
  { name: 'disk-full', form: 'disk-full=DRIVE', example: 'disk-full=sdb', what: "live: the drive file's disk is full, writes get ENOSPC" },
] as const;

/** `--fault`'s help, from FAULT_FORMS; `live` adds where each applies on a live fabric. */
export function faultHelp(live: boolean): string {
  const forms = FAULT_FORMS.map((f) => `${f.form} (${f.what}, e.g. ${f.example})`).join('; ');
  return `faults, seeded by --seed, repeatable, comma-separated: ${forms}; on every cable, or ...@LINK on one (dconnect links lists them)${live ? "; live, down and buffer apply to a node's own cables, the UDP channels between processes take the rates" : ''}`;
}
export type FaultKind = (typeof FAULT_KINDS)[number];
/** The smallest output buffer a `buffer=` fault may leave: one full-size (1500-byte payload) frame; with jumbo frames, `faultConnect` asks for one of the topology's largest. */
const MIN_BUFFER_BYTES = wireBytes(MAX_PAYLOAD_BYTES);
/** Rates above this are refused: a cable that loses most frames is not a fault but a cut. */
const MAX_RATE = 0.5;

export interface FaultSpec {
  rates: Record<FaultKind, number>;
  /** Windows when the cable is down, relative to the move's start, ps. */
  downs: { startPs: number; durationPs: number }[];
  /** Output buffer of the ports at both ends, bytes (null: the topology's). */
  bufferBytes: number | null;
  /** The one link it applies to, or null: every cable. */
  link: string | null;
}

/** `loss=1%,dup=0.5%@host`, `down=2ms+500us@box0.slot1`, `buffer=8KiB@sw0-sw1` -> a spec. */
export function parseFault(text: string): FaultSpec {
  const [ratesText, link, extra] = text.split('@');
  if (extra !== undefined || link === '') throw new DconnectError('BAD_OPTION', `--fault '${text}': at most one @LINK`, 'e.g. --fault loss=1%@host (dconnect links lists the links)');
  const rates: Record<FaultKind, number> = { loss: 0, corrupt: 0, dup: 0, reorder: 0 };
  const spec: FaultSpec = { rates, downs: [], bufferBytes: null, link: link ?? null };
  for (const part of ratesText.split(',')) {
    const down = /^down=([^+]+)\+(.+)$/.exec(part.trim());
    if (down) {
      spec.downs.push({ startPs: parseTime(down[1], `--fault '${text}': down start`), durationPs: parseTime(down[2], `--fault '${text}': down duration`) });
      continue;
    }
    const buffer = /^buffer=(.+)$/.exec(part.trim());
    if (buffer) {
      spec.bufferBytes = parseSize(buffer[1], `--fault '${text}': buffer`);
      // Smaller than one full-size frame, a port could never send the largest ones: not an overflow but a cut.
      if (spec.bufferBytes < MIN_BUFFER_BYTES) throw new DconnectError('BAD_OPTION', `--fault '${text}': a buffer of ${spec.bufferBytes} B cannot hold one full-size Ethernet frame (${MIN_BUFFER_BYTES} B on the wire)`, `give at least ${MIN_BUFFER_BYTES} B, e.g. buffer=1600`);
      continue;
    }
    const m = /^([a-z-]+)=([0-9.]+)(%?)$/.exec(part.trim());
    if (!m) throw new DconnectError('BAD_OPTION', `--fault '${text}': '${part}' is not KIND=RATE, down=START+DURATION or buffer=SIZE`, `e.g. --fault loss=1%,reorder=1%,dup=0.5%,corrupt=0.1%, down=2ms+500us@host, buffer=8KiB@sw0-sw1; kinds: ${FAULT_KINDS.join(', ')}`);
    const kind = m[1] as FaultKind;
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) throw new DconnectError('BAD_OPTION', `--fault '${text}': no fault kind '${m[1]}'`, `kinds on a cable: ${FAULT_KINDS.join(', ')}, down=START+DURATION, buffer=SIZE`);
    const rate = Number(m[2]) / (m[3] === '%' ? 100 : 1);
    if (!(rate >= 0 && rate <= MAX_RATE)) throw new DconnectError('BAD_OPTION', `--fault '${text}': ${kind} rate ${m[2]}${m[3]} is outside 0..${MAX_RATE * 100}%`);
    rates[kind] = rate;
  }
  return spec;
}

export type FaultOutcome = 'lost' | 'corrupted' | 'duplicated' | 'reordered';

/**
 * The fault one uniform draw `u` in [0, 1) picks: the rates partition [0, 1) in the order loss,
 * corrupt, dup, reorder, the rest passing. Pure, so every faulty channel (the in-process cable, the
 * live UDP transport) decides alike from its own stream.
 */
export function drawFault(rates: Record<FaultKind, number>, u: number): FaultOutcome | null {
  const { loss, corrupt, dup, reorder } = rates;
  if (u < loss) return 'lost';
  if (u < loss + corrupt) return 'corrupted';
  if (u < loss + corrupt + dup) return 'duplicated';
  if (u < loss + corrupt + dup + reorder) return 'reordered';
  return null;
}

/** What the faulty cables did to the frames that crossed them. */
export interface FaultCounts {
  /** Frames that crossed a faulty cable (each drew its fault). */
  frames: number;
  /** Lost on the way. */
  lost: number;
  /** Lost because the cable was down. */
  down: number;
  /** Corrupted: dropped by the receiving MAC's FCS check. */
  corrupted: number;
  /** Delivered twice. */
  duplicated: number;
  /** Held back until later frames overtook them. */
  reordered: number;
}

class FaultyCable extends CableChannel {
  constructor(
    a: EthPort,
    b: EthPort,
    propagationNs: number,
    private readonly rates: Record<FaultKind, number>,
    private readonly rng: RngStream,
    private readonly counts: FaultCounts,
    private readonly downs: { startPs: number; durationPs: number }[],
    private readonly origin: { ps: number; clockPs?: () => number },
  ) {
    super(a, b, propagationNs);
  }

  override carry(from: EthPort, frame: Frame, serializedInPs: number): void {
    const done = frame.readyPs;
    if (done === null) {
      this.counts.frames++;
      if (this.isDown(from)) return void this.counts.down++;
      return this.apply(from, frame, serializedInPs, this.draw());
    }
    // A burst (burst granularity): each of its frames draws its own fault, in order, as per-TLP's
    // frames would. The runs of frames no fault hit cross as bursts of their own; a frame hit crosses
    // (or not) alone, so the far bridge sees the gap and its selective repeat recovers the frame.
    const n = done.length;
    this.counts.frames += n;
    if (this.isDown(from)) return void (this.counts.down += n);
    const now = from.scheduler.now();
    const delay = (i: number) => (done[i] > now ? done[i] - now : 0);
    let fault: FaultOutcome | null = null;
    splitAtHits(
      frame,
      () => (fault = this.draw()) !== null,
      (run, _a, b) => super.carry(from, run, run === frame ? serializedInPs : delay(b - 1)),
      (one, i) => this.apply(from, one, delay(i), fault),
    );
  }

  private isDown(from: EthPort): boolean {
    if (this.downs.length === 0) return false; // most faulty cables are never down: no clock read per frame
    const t = (this.origin.clockPs ? this.origin.clockPs() : from.scheduler.now()) - this.origin.ps;
    return this.downs.some((w) => t >= w.startPs && t < w.startPs + w.durationPs);
  }

  private draw(): FaultOutcome | null {
    const fault = drawFault(this.rates, this.rng.nextFloat());
    if (fault !== null) this.counts[fault]++;
    return fault;
  }

  /** One frame (not a burst) with its drawn fault. */
  private apply(from: EthPort, frame: Frame, serializedInPs: number, fault: FaultOutcome | null): void {
    switch (fault) {
      case 'lost':
      case 'corrupted':
        return;
      case 'duplicated':
        super.carry(from, frame, serializedInPs);
        super.carry(from, frame, serializedInPs);
        return;
      case 'reordered':
        // Held back by three of its own serialization times (at least 1 us): the next frames pass it.
        super.carry(from, frame, serializedInPs + Math.max(3 * serializedInPs, 1_000_000));
        return;
      default:
        super.carry(from, frame, serializedInPs);
    }
  }

  /** The stream's position makes every state unique: a faulty fabric is never taken for periodic. */
  override digest(d: StateDigest, frame: (f: Frame) => void): void {
    d.str(`faulty:${this.rng.position()}:${this.counts.frames}`);
    super.digest(d, frame);
  }
}

/**
 * What is wrong when a spec's output buffer is smaller than a burst of `burstBytes` (the first such
 * spec), or null. Burst granularity serves a burst as if it had each output buffer to itself
 * (ethernet/port.ts sendBurst); a buffer smaller than one burst breaks that: at 1600 B on the DC
 * buffer's switch port, a 16 MiB direct copy dropped 3,511 frames there at burst granularity against
 * per-TLP's 20. Such a run goes per TLP (the callers refuse or fall back, each with its own hint).
 */
export function bufferSmallerThanBurst(specs: FaultSpec[], burstBytes: number): string | null {
  const s = specs.find((x) => x.bufferBytes !== null && x.bufferBytes < burstBytes);
  if (!s) return null;
  return `--fault buffer=${s.bufferBytes}${s.link ? `@${s.link}` : ''} is smaller than a burst (${burstBytes} B): burst granularity serves a burst as if it had each output buffer to itself, which so small a buffer breaks`;
}

/**
 * A channel factory that lays faulty cables where `specs` say and plain ones elsewhere, and counts what
 * it did. Every spec naming a link (or every link) applies to it: the last one that sets rates gives
 * the rates, down windows add up, the last buffer size wins. `start(ps)` says when the move began (down
 * windows count from there; before it, from time 0). `overflowDrops()`: frames the shrunk buffers dropped;
 * `report()`: the counts and those drops together, as results report them.
 */
export function faultConnect(topology: Topology, specs: FaultSpec[], seed: number, clockPs?: () => number): { connect: ConnectFn; counts: FaultCounts; start: (ps: number) => void; overflowDrops: () => number; report: () => FaultReport; hasDowns: boolean } {
  checkLinks(
    topology,
    specs.flatMap((s) => (s.link === null ? [] : [s.link])),
    '--fault',
  );
  const largest = wireBytes(topology.ethernet.maxPayloadBytes);
  for (const s of specs) {
    if (s.bufferBytes !== null && s.bufferBytes < largest) throw new DconnectError('BAD_OPTION', `--fault buffer=${s.bufferBytes}: a buffer of ${s.bufferBytes} B cannot hold one of this topology's largest frames (ethernet.maxPayloadBytes ${topology.ethernet.maxPayloadBytes}: ${largest} B on the wire)`, `give at least ${largest} B`);
  }
  const streams = new RngFactory(seed);
  const counts: FaultCounts = { frames: 0, lost: 0, down: 0, corrupted: 0, duplicated: 0, reordered: 0 };
  // Down windows are timed by the simulated clock, or by `clockPs` when given (live, unpaced: a node's
  // simulated time stands still while it waits, so an outage in it would never end).
  const origin = { ps: 0, clockPs };
  const limited: EthPort[] = [];
  // A NIC network's cables carry the block transfer protocol, which has no retransmission (credits make
  // loss impossible there): faults go on ExpEther's cables, whose bridges recover. One named is refused.
  const stations = stationLinks(topology);
  for (const s of specs) {
    if (s.link !== null && stations.has(s.link)) throw new DconnectError('BAD_OPTION', `--fault ...@${s.link}: that cable is on a NIC's network, whose block transfer protocol does not retransmit`, 'put faults on ExpEther cables (host, box0.slot3, ...), or on every cable (a NIC network\'s are left out)');
  }
  const connect: ConnectFn = (a, b, ns, name) => {
    const link = linkName(a.name, b.name);
    const mine = stations.has(link) ? [] : specs.filter((s) => s.link === null || s.link === link);
    const rates = [...mine].reverse().find((s) => FAULT_KINDS.some((k) => s.rates[k] > 0))?.rates ?? null;
    const downs = mine.flatMap((s) => s.downs);
    const buffer = [...mine].reverse().find((s) => s.bufferBytes !== null)?.bufferBytes ?? null;
    if (buffer !== null) {
      for (const p of [a, b]) {
        p.limitQueue(buffer);
        limited.push(p);
      }
    }
    if (!rates && downs.length === 0) return connectCable(a, b, ns, name);
    return new FaultyCable(a, b, ns, rates ?? { loss: 0, corrupt: 0, dup: 0, reorder: 0 }, streams.stream(`fault:${link}`), counts, downs, origin);
  };
  const overflowDrops = () => limited.reduce((n, p) => n + p.counters.drops, 0);
  return { connect, counts, start: (ps) => (origin.ps = ps), overflowDrops, report: () => ({ ...counts, overflowDrops: overflowDrops() }), hasDowns: specs.some((s) => s.downs.length > 0) };
}

/** The cables of NICs' networks (a NIC's port, its network switch's ports, its clients'), by link name. */
function stationLinks(t: Topology): Set<string> {
  const out = new Set<string>();
  if (!t.boxes.some((b) => b.slots.some((s) => s.kind === 'nic'))) return out;
  buildFabric(t, {
    seed: 1,
    connect: (a, b, ns, name) => {
      if ([a.name, b.name].some((n) => /\.mac$/.test(n) || /^net\./.test(n))) out.add(linkName(a.name, b.name));
      return connectCable(a, b, ns, name);
    },
  });
  return out;
}

/** A failing backing store (live: the drive's file), as `store-error=` and `disk-full=` inject it (live/store-faults.ts). */
export interface StoreFault {
  device: string;
  /** `io`: EIO on the block's reads or writes; `no-space`: every write that reaches the file gets ENOSPC. */
  kind: 'io' | 'no-space';
  /** The logical block (`io`), null for `no-space`. */
  lba: number | null;
  op: 'read' | 'write';
}

/** `store-error=sdb:LBA[:read|:write]` or `disk-full=sdb`; null when `text` is another kind of fault. */
export function parseStoreFault(text: string): StoreFault | null {
  if (text.startsWith('disk-full=')) {
    const m = /^disk-full=([A-Za-z][\w-]*)$/.exec(text);
    if (!m) throw new DconnectError('BAD_OPTION', `--fault '${text}' is not disk-full=DEVICE`, 'e.g. --fault disk-full=sdb (writes to that drive\'s file get ENOSPC)');
    return { device: m[1], kind: 'no-space', lba: null, op: 'write' };
  }
  if (!text.startsWith('store-error=')) return null;
  const m = /^store-error=([A-Za-z][\w-]*):(\d+)(?::(read|write))?$/.exec(text);
  if (!m) throw new DconnectError('BAD_OPTION', `--fault '${text}' is not store-error=DEVICE:LBA[:read|:write]`, 'e.g. --fault store-error=sdb:2048 (reads of that block of the drive\'s file fail with EIO), or store-error=sdb:2048:write');
  return { device: m[1], kind: 'io', lba: Number(m[2]), op: (m[3] as 'read' | 'write' | undefined) ?? 'read' };
}

/** Whether `text` is a fault of a drive (media or store) rather than of a cable. */
export function isDriveFault(text: string): boolean {
  return parseMediaError(text) !== null || parseStoreFault(text) !== null;
}

/** `media-error=sdb:LBA[:read|:write]`: reads (the default) or writes of that logical block on that drive fail (unrecovered read error, write fault); null when `text` is another kind of fault. */
export function parseMediaError(text: string): { device: string; lba: number; op: 'read' | 'write' } | null {
  if (!text.startsWith('media-error=')) return null;
  const m = /^media-error=([A-Za-z][\w-]*):(\d+)(?::(read|write))?$/.exec(text);
  if (!m) throw new DconnectError('BAD_OPTION', `--fault '${text}' is not media-error=DEVICE:LBA[:read|:write]`, 'e.g. --fault media-error=sda:2048 (a logical block of the drive, 512 B each on paper-2012; reads of it fail), or media-error=sdb:2048:write');
  return { device: m[1], lba: Number(m[2]), op: (m[3] as 'read' | 'write' | undefined) ?? 'read' };
}

/** What the faulty cables did, with the frames shrunk buffers (`buffer=`) dropped: a result's `faults`. */
export type FaultReport = FaultCounts & { overflowDrops: number };

/** What a simulated run's `--fault` specs came to (`simulatedFaults`). */
export interface SimulatedFaults {
  /** The faulty cables' channel factory; null when no spec is a cable's. */
  connect: ConnectFn | null;
  /** Tells the cables when the move began (down windows count from it). */
  start: (ps: number) => void;
  /** Blocks of drives whose reads or writes fail (`media-error=`). */
  mediaErrors: { device: string; lba: number; op: 'read' | 'write' }[];
  /** A cable goes down at a time: the fast fidelity could jump over the outage, so the run goes at full fidelity. */
  needsFullFidelity: boolean;
  /** What the faulty cables did so far (a copy). */
  counts: () => FaultCounts;
  /** What the faulty cables did so far and the frames shrunk buffers (`buffer=`) dropped, as a result reports them. */
  report: () => FaultReport;
}

/** A library request's faults lay every cable, so they cannot come with the request's own `connect`: refused here, for every kind of move. */
export function checkFaultsAlone(req: { faults?: readonly string[]; connect?: unknown }): void {
  if (req.faults?.length && req.connect) throw new DconnectError('BAD_OPTION', 'faults and a connect function together: the faults lay every cable', 'give the faults alone, or build them into your connect function (runtime/faults.ts faultConnect)');
}

/**
 * The `--fault` specs of a simulated run, parsed and checked in one place (the CLI's `copy` and a
 * library's `MovesRequest.faults`): drive faults of the simulated kind (`media-error=`), cable faults
 * laid by `faultConnect`. Refused with a clear error: store faults (they break a live fabric's drive
 * files; a simulated drive has none) and, at burst granularity (`burstBytes` > 0), a buffer smaller
 * than one burst.
 */
export function simulatedFaults(topology: Topology, specs: readonly string[], seed: number, burstBytes: number): SimulatedFaults {
  const store = specs.find((f) => parseStoreFault(f) !== null);
  if (store) throw new DconnectError('BAD_OPTION', `--fault ${store}: store faults break a live fabric's drive files; a simulated drive keeps its bytes in memory`, `give it to the live fabric: dconnect up --fault ${store} (then dconnect copy ... --live); media-error=... fails blocks in simulation`);
  const mediaErrors = specs.map(parseMediaError).filter((m) => m !== null);
  const cable = specs.filter((f) => parseMediaError(f) === null).map(parseFault);
  if (burstBytes > 0) {
    const what = bufferSmallerThanBurst(cable, burstBytes);
    if (what) throw new DconnectError('BAD_OPTION', what, 'run it per TLP: drop --granularity burst');
  }
  const f = cable.length > 0 ? faultConnect(topology, cable, seed) : null;
  const none: FaultCounts = { frames: 0, lost: 0, down: 0, corrupted: 0, duplicated: 0, reordered: 0 };
  return {
    connect: f?.connect ?? null,
    start: (ps) => f?.start(ps),
    mediaErrors,
    needsFullFidelity: f?.hasDowns ?? false,
    counts: () => ({ ...(f?.counts ?? none) }),
    report: () => f?.report() ?? { ...none, overflowDrops: 0 },
  };
}

import type { CopyResult } from '../runtime/copy.js';
import { deviceTraceKey } from '../topology/device-registry.js';
import { ssdKind } from '../topology/kinds/ssd.js';

/**
 * What limits a move, from its trace counters alone. Names come from the trace keys and the result's
 * table of devices (`box1.slot5` -> `sdk`), so any topology is named the same way. A resource busy
 * SATURATED of the time is the limit; otherwise the window that binds is found from the time each
 * window was full with work waiting on it (counters the components keep for this: read tags
 * exhausted, ExpEther window and credit waits, time without a command in work) and said with the
 * measured numbers that make the bandwidth (Little's law: tags in flight x bytes / round trip).
 */

/** What the analysis reads from a result: one move's or several moves' (their devices and counters together). */
export type LimitInput = Pick<CopyResult, 'trace' | 'devices' | 'simulatedSeconds' | 'depth' | 'hostLanes'> & {
  /** What relayed the data (a DC buffer's name, or `host memory`): whose bridge sends the destination's read completions. */
  relay?: string;
};

/** A resource's share of the move's elapsed time during which it was busy. */
export interface Utilization {
  resource: string;
  utilization: number;
}

/** What binds a move: a saturated resource, or the window that keeps it below every resource's capacity. */
export type Binding = 'saturated' | 'read-tags' | 'expether-window' | 'credits' | 'commands' | 'latency';

export interface Limit {
  /** The busiest resource. */
  resource: string;
  utilization: number;
  /** True when the busiest resource is busy at least SATURATED of the time. */
  saturated: boolean;
  /** The class of limit the explanation gives. */
  binds: Binding;
  /** One sentence with the measured numbers, checkable against the trace counters. */
  explanation: string;
}

/** A resource busy at least this share of the time is the bottleneck. */
export const SATURATED = 0.95;
/**
 * A window full, with work waiting on it, at least this share of the time binds when nothing saturates
 * (Little's law then gives the rate from its size); one full for less shares the limit with the
 * commands in flight, and more commands still help.
 */
export const WINDOW_BINDS = 0.9;
/** A drive without a command in work at least this share of the time is waiting for commands, not working. */
export const STARVED = 0.1;
/** A window full at least this share of the time, short of WINDOW_BINDS, is said to share the limit. */
export const PARTLY = 0.5;
/** Drives within this share of working time of the longest-working one are the same stage. */
export const STAGE_TIE = 0.05;
/** When no window binds: commands in work at the drives this share of the time or more (of depth per move) bind. */
export const COMMANDS_BIND = 0.75;

type Counters = Record<string, number>;

/** The device in a slot, by the slot's trace prefix (`box0.slot2` -> `dcbuf0`); the prefix itself if the table lacks it. */
function deviceOf(prefix: string, devices: Record<string, string>): string {
  return devices[prefix] ?? prefix;
}

/**
 * The name of the thing a trace key counts, for people: `box0.slot1.link.upstream` -> `sdb link
 * upstream`, `eth.box0.slot2` -> `dcbuf0's bridge Ethernet port`, `eth.sw1.p3` -> `Ethernet port
 * sw1.p3`, and a device's key by its kind's label (topology/device-registry.ts): `ssd.box1.slot5` ->
 * `sdk`, `dcbuffer.box0.slot2` -> `dcbuf0 DDR`.
 */
export function resourceName(key: string, devices: Record<string, string>, hostLanes?: number): string {
  if (key.startsWith('hostLink.')) return `host link${hostLanes ? ` x${hostLanes}` : ''} ${key.slice('hostLink.'.length)}`;
  const link = /^(.+)\.link\.(upstream|downstream)$/.exec(key);
  if (link) return `${deviceOf(link[1], devices)} link ${link[2]}`;
  const device = deviceTraceKey(key);
  if (device) return device.kind.label(deviceOf(device.slot, devices));
  const [kind, ...rest] = key.split('.');
  const sub = rest.join('.');
  switch (kind) {
    case 'eth':
      if (sub === 'hostBridge') return "host bridge's Ethernet port";
      return sub in devices ? `${devices[sub]}'s bridge Ethernet port` : `Ethernet port ${sub}`;
    case 'bridge':
      return sub === 'host' ? 'host bridge' : `${deviceOf(sub, devices)}'s bridge`;
    case 'switch':
      return `switch ${sub}`;
    default:
      return key;
  }
}

/**
 * Utilization of every timed resource during the move, from the trace counters: PCIe link directions,
 * Ethernet ports, and the devices' own (each kind's `resources`: the SSDs' flash read/write servers,
 * the DC buffers' DDR). Sorted busiest first.
 */
export function utilizations(r: LimitInput): Utilization[] {
  const elapsedPs = r.simulatedSeconds * 1e12;
  const out: Utilization[] = [];
  for (const [key, c] of Object.entries(r.trace)) {
    const name = resourceName(key, r.devices, r.hostLanes);
    if (key.startsWith('hostLink.') || /\.link\.(upstream|downstream)$/.test(key) || key.startsWith('eth.')) out.push({ resource: name, utilization: c.busyPs / elapsedPs });
    else {
      const device = deviceTraceKey(key);
      if (device) for (const x of device.kind.resources(name, c)) out.push({ resource: x.resource, utilization: x.busyPs / elapsedPs });
    }
  }
  return out.sort((a, b) => b.utilization - a.utilization);
}

/** One drive's windows over the move, from its counters and its slot's bridge and link. */
export interface DriveWindows {
  device: string;
  /** Share of the time without a command in work. */
  idle: number;
  /** Mean commands in work. */
  commands: number;
  /** DMA reads issued (data, and command and PRP list fetches). */
  reads: number;
  /** Share of the time a read waited for a tag with every tag in use. */
  tagsExhausted: number;
  /** Mean read tags in use. */
  tagsInUse: number;
  /** Mean read round trip, tag taken to last completion in, ps. */
  readRoundTripPs: number;
  /** Mean bytes per read request. */
  bytesPerRead: number;
  /** Bytes read by DMA per second of the move, 10^6 B/s. */
  readMBps: number;
  /** Bytes written by DMA per second of the move, 10^6 B/s. */
  writeMBps: number;
  /** Share of the time its bridge held a TLP for the peer's ExpEther window. */
  windowWait: number;
  /** Share of the time its link's upstream direction held TLPs waiting for credits. */
  creditWait: number;
}

/** The windows of every drive that took part (received a command) in the move. */
export function driveWindows(r: LimitInput): DriveWindows[] {
  const elapsedPs = r.simulatedSeconds * 1e12;
  const out: DriveWindows[] = [];
  for (const [key, c] of Object.entries(r.trace)) {
    const device = deviceTraceKey(key);
    if (device?.kind !== ssdKind || !(c.commands > 0)) continue;
    const prefix = device.slot;
    const reads = c['dma.mrd'] ?? 0;
    const tagPs = c['dma.readTagPs'] ?? 0;
    const bridge: Counters = r.trace[`bridge.${prefix}`] ?? {};
    const up: Counters = r.trace[`${prefix}.link.upstream`] ?? {};
    out.push({
      device: deviceOf(prefix, r.devices),
      idle: (c.idlePs ?? 0) / elapsedPs,
      commands: (c.commandPs ?? 0) / elapsedPs,
      reads,
      tagsExhausted: (c['dma.tagsExhaustedPs'] ?? 0) / elapsedPs,
      tagsInUse: tagPs / elapsedPs,
      readRoundTripPs: reads > 0 ? tagPs / reads : 0,
      bytesPerRead: reads > 0 ? (c['dma.bytesRead'] ?? 0) / reads : 0,
      readMBps: (c['dma.bytesRead'] ?? 0) / r.simulatedSeconds / 1e6,
      writeMBps: (c['dma.bytesWritten'] ?? 0) / r.simulatedSeconds / 1e6,
      windowWait: (bridge.windowWaitPs ?? 0) / elapsedPs,
      creditWait: (up.creditWaitPs ?? 0) / elapsedPs,
    });
  }
  return out;
}

/**
 * Where read requests waited: each component's summed read queueing over all reads issued (every
 * device's DMA reads), ps per read. A device is named itself (`dcbuf0`: its request FIFO), not its
 * resource. Largest first.
 */
export function readWaits(r: LimitInput): { where: string; psPerRead: number }[] {
  let reads = 0;
  for (const [key, c] of Object.entries(r.trace)) if (deviceTraceKey(key)) reads += c['dma.mrd'] ?? 0;
  if (reads === 0) return [];
  return Object.entries(r.trace)
    .filter(([, c]) => (c.readQueuedPs ?? 0) > 0)
    .map(([key, c]) => {
      const device = deviceTraceKey(key);
      return { where: device ? deviceOf(device.slot, r.devices) : resourceName(key, r.devices, r.hostLanes), psPerRead: c.readQueuedPs / reads };
    })
    .sort((a, b) => b.psPerRead - a.psPerRead);
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const us = (ps: number) => `${(ps / 1e6).toFixed(1)} us`;
const mbps = (x: number) => `${x.toFixed(0)} MB/s`;

/** Candidates for the binding window, each with the share of the time it was full with work waiting. */
interface Candidate {
  binds: Exclude<Binding, 'saturated' | 'commands' | 'latency'>;
  drive: DriveWindows;
  full: number;
  /** What is full, for people: "sdb's read tags", "the host bridge's ExpEther window". */
  name: string;
  /** The explanation when it binds. */
  say: (r: LimitInput, also: string[]) => string;
}

/** The bridge that sends the completions of a drive's data reads: the relay's (its DC buffer's, or the host's). */
function completerBridge(r: LimitInput): string | undefined {
  if (!r.relay) return undefined;
  if (r.relay === 'host memory') return 'bridge.host';
  const prefix = Object.keys(r.devices).find((p) => r.devices[p] === r.relay);
  return prefix === undefined ? undefined : `bridge.${prefix}`;
}

function candidates(r: LimitInput, d: DriveWindows): Candidate[] {
  const elapsedPs = r.simulatedSeconds * 1e12;
  const out: Candidate[] = [];
  // A drive moves data one way: a destination reads it by DMA (its writes are completion entries and
  // MSIs), a source writes it (its reads fetch commands and PRP lists). Its windows are that way's.
  if (d.readMBps > d.writeMBps) {
    // A reader's tags stay in use while its completions wait: if the bridge sending them held them
    // for its ExpEther window (nearly) as long as the tags were exhausted, that window is the one full.
    const key = completerBridge(r);
    const completer = key ? (r.trace[key]?.windowWaitPs ?? 0) / elapsedPs : 0;
    if (key && completer > 0 && completer >= 0.9 * d.tagsExhausted) {
      const who = key === 'bridge.host' ? 'the host bridge' : resourceName(key, r.devices, r.hostLanes);
      out.push({
        binds: 'expether-window',
        drive: d,
        full: completer,
        name: `${who}'s ExpEther window`,
        say: () =>
          `ExpEther window bound: ${who} held ${d.device}'s read completions for its window of unacknowledged frames ${pct(completer)} of the time, and ${d.device}'s read tags were all in use ${pct(d.tagsExhausted)}: ${d.tagsInUse.toFixed(1)} tags x ${d.bytesPerRead.toFixed(0)} B over a ${us(d.readRoundTripPs)} round trip = ${mbps(d.readMBps)}`,
      });
    } else out.push({ binds: 'read-tags', drive: d, full: d.tagsExhausted, name: `${d.device}'s read tags`, say: (rr, also) => readTagSentence(rr, d, also) });
    return out;
  }
  // A writer's stall travels back from the first full window on its path: a bridge waiting for the
  // ExpEther window holds its TLPs, so the link behind it waits for credits too. The window is named
  // when it accounts for (nearly) all of the link's wait; credits when they wait on their own.
  if (d.windowWait > 0 && d.windowWait >= 0.9 * d.creditWait) {
    out.push({
      binds: 'expether-window',
      drive: d,
      full: d.windowWait,
      name: `${d.device}'s ExpEther window`,
      say: () =>
        `ExpEther window bound: ${d.device}'s bridge held its TLPs for the peer's window of unacknowledged frames ${pct(d.windowWait)} of the time (its link waited for credits ${pct(d.creditWait)}); ${d.device} wrote ${mbps(d.writeMBps)}`,
    });
  } else {
    out.push({
      binds: 'credits',
      drive: d,
      full: d.creditWait,
      name: `${d.device}'s link credits`,
      say: () =>
        `credit bound: ${d.device} link upstream waited for flow-control credits ${pct(d.creditWait)} of the time (its bridge waited for the ExpEther window ${pct(d.windowWait)}); ${d.device} wrote ${mbps(d.writeMBps)}`,
    });
  }
  return out;
}

/** A window's full time as a share of its drive's time with a command in work. */
function relative(c: Candidate): number {
  const working = 1 - c.drive.idle;
  return working > 0 ? c.full / working : 0;
}

function readTagSentence(r: LimitInput, d: DriveWindows, also: string[]): string {
  let s = `read-tag bound: ${d.device}'s read tags all in use ${pct(d.tagsExhausted)} of the time${also.length ? ` (also ${also.join(', ')})` : ''}: ${d.tagsInUse.toFixed(1)} tags x ${d.bytesPerRead.toFixed(0)} B in flight over a ${us(d.readRoundTripPs)} mean read round trip = ${mbps(d.readMBps)}`;
  const waits = readWaits(r);
  const waited = waits.reduce((n, w) => n + w.psPerRead, 0);
  if (waited >= 0.1 * d.readRoundTripPs) {
    const where = waits
      .filter((w) => w.psPerRead >= 0.1 * waited)
      .slice(0, 3)
      .map((w) => `${w.where} ${us(w.psPerRead)}`);
    s += ` (requests queued ${us(waited)} of it: ${where.join(', ')})`;
  }
  if (d.commands >= 1.5) s += `; ${d.commands.toFixed(1)} commands in work, more add no tags`;
  return s;
}

/**
 * Names the resource or window that limits a move and says why, with the measured numbers.
 *
 * Nothing saturated: the drives that worked longest (had a command in work the largest share of the
 * time) are the stage the others wait on. Their fullest window, as a share of their working time,
 * binds if it was full WINDOW_BINDS of it. Otherwise the commands in flight bind when they were at
 * the drives COMMANDS_BIND of the time (or every drive waited for commands), with any window full
 * PARTLY of the time named as sharing the limit; else nothing explains it and the numbers are given.
 */
export function limitOf(r: LimitInput): Limit {
  const u = utilizations(r);
  const top = u[0] ?? { resource: 'nothing', utilization: 0 };
  const base = { resource: top.resource, utilization: top.utilization, saturated: false };
  if (top.utilization >= SATURATED) {
    return { ...base, saturated: true, binds: 'saturated', explanation: `${top.resource} is saturated (${pct(top.utilization)} busy)` };
  }
  const busiest = `busiest: ${top.resource} ${pct(top.utilization)}`;
  const drives = driveWindows(r);
  const mostWorking = Math.max(0, ...drives.map((d) => 1 - d.idle));
  const stage = drives.filter((d) => 1 - d.idle >= mostWorking - STAGE_TIE);
  const all = stage.flatMap((d) => candidates(r, d)).sort((a, b) => relative(b) - relative(a));
  const best = all[0];
  if (best && relative(best) >= WINDOW_BINDS) {
    const also = all.filter((c) => c !== best && c.binds === best.binds && c.name !== best.name && relative(c) >= WINDOW_BINDS).map((c) => c.drive.device);
    return { ...base, binds: best.binds, explanation: `${best.say(r, also)}; ${busiest}` };
  }
  // No window full most of the time: if the commands were at the drives nearly all the time (or no
  // drive had work all the time), their fixed latencies (flash access, completion, interrupt) are
  // what more commands in flight would cover.
  const moves = Math.max(1, Math.ceil(drives.length / 2));
  const share = drives.reduce((n, d) => n + d.commands, 0) / (r.depth * moves);
  const perDrive = [...drives].sort((a, b) => b.commands - a.commands).map((d) => `${d.device} ${d.commands.toFixed(1)}`);
  const idle = [...drives].sort((a, b) => a.idle - b.idle).map((d) => `${d.device} ${pct(d.idle)}`);
  const starved = drives.length > 0 && mostWorking <= 1 - STARVED;
  const partly = best && relative(best) >= PARTLY ? `${best.name} full ${pct(best.full)} of the time, so more commands help only in part` : '';
  if (share >= COMMANDS_BIND || starved) {
    const one = r.depth === 1 ? ' (one command at a time: each chunk is read, then written, with no overlap)' : '';
    const where = starved
      ? `left every drive without a command part of the time (${idle.join(', ')})`
      : `were at the drives ${pct(share)} of the time (${perDrive.join(', ')} on average)`;
    const windows = partly ? `; ${partly}` : ': more would cover their fixed latencies (flash access, completion, interrupt)';
    return { ...base, binds: 'commands', explanation: `commands-in-flight bound: ${r.depth * moves} in flight${one} ${where}${windows}; ${busiest}` };
  }
  const fullest = best && best.full > 0 ? `; fullest window: ${best.name}, ${pct(best.full)} of the time` : '';
  return {
    ...base,
    binds: 'latency',
    explanation: `latency-bound: no resource or window was full most of the time, and the commands in flight were at the drives ${pct(share)} of it (${perDrive.join(', ')} on average)${fullest}; ${busiest}`,
  };
}

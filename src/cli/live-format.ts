/**
 * What the live commands print, as pure functions of what the host node answered: `status`, the
 * `devices --live` table, and hints a user pastes back (which must carry the --state they gave).
 */
import type { HostStatus, JobView, LiveDevicesAnswer } from '../live/control-api.js';
import { formatBytes } from '../core/units.js';
import { end, table } from './format.js';
import { deviceKinds } from '../topology/device-registry.js';

/** The state directory `up` and friends use when --state is not given. */
export const DEFAULT_STATE = '.dconnect';

/** A word as a POSIX shell reads it back: bare when safe, else in single quotes. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** ` --state DIR` for a printed command when DIR is not the default; '' when it is. */
export function stateArg(state: string): string {
  return state === DEFAULT_STATE ? '' : ` --state ${shellQuote(state)}`;
}

/**
 * A hint (from the host node, or any live error) made pasteable with the user's --state: every live
 * command in it (`dconnect copy ... --live`, `devices --live`, `status`, `down`, `up`) gains
 * `--state DIR`. Unchanged for the default directory, or when the hint already names this one.
 */
export function withState(text: string, state: string): string {
  const arg = stateArg(state);
  if (arg === '' || text.includes(arg)) return text;
  return text.replace(/--live\b/g, `--live${arg}`).replace(/\bdconnect (status|down|up)\b/g, `dconnect $1${arg}`);
}

/** Milliseconds for a reader: 12.738610569999764 -> "12.7". */
const msText = (ms: number): string => ms.toFixed(1);

export interface Lag {
  maxMs: number;
  p99Ms: number;
}
export const lagText = (l: Lag): string => `lag max ${msText(l.maxMs)} ms, p99 <= ${msText(l.p99Ms)} ms`;

export interface StatusNode {
  name: string;
  role: string;
  running: boolean;
  pid: number | null;
  udp: { host: string; port: number } | null;
  control: { socket: string } | null | undefined;
  report?: unknown;
}
/** What `status` prints of a job: the control API's job view (live/control-api.ts). */
export type StatusJob = Pick<JobView, 'id' | 'state' | 'src' | 'dst' | 'lengthBytes' | 'bytesDone' | 'files' | 'error'> & Partial<Pick<JobView, 'srcOffset' | 'dstOffset'>>;
/** The host's session as GET /status gives it. */
export type StatusSession = NonNullable<HostStatus['session']>;

/** `dconnect status`'s text. */
export function statusText(s: { root: string; topology: string; pace: string; dilation: number; burstBytes?: number }, nodes: StatusNode[], session: StatusSession | null, jobs: StatusJob[]): string {
  const lines = [`fabric ${s.root}: ${s.topology}, pace ${s.pace}${s.pace === 'model' ? `, time dilation ${s.dilation}` : ''}, ${granularityText(s.burstBytes ?? 0)}`];
  for (const n of nodes) {
    const rep = n.report as { lag?: Lag | null; faults?: Record<string, number> | null } | undefined;
    lines.push(`  ${n.name.padEnd(8)} ${n.role.padEnd(4)} ${n.running ? `running, pid ${n.pid}` : 'stopped'}${n.udp ? `, udp ${n.udp.host}:${n.udp.port}` : ''}${n.control ? `, control ${n.control.socket}` : ''}${rep?.lag ? `, ${lagText(rep.lag)}` : ''}${rep?.faults ? `, own cables: ${rep.faults.lost} lost, ${rep.faults.down} lost while down, ${rep.faults.overflowDrops} overflowed` : ''}`);
  }
  if (session) {
    lines.push(`  session ${session.epoch}: ${session.booted ? 'booted' : 'booting'}, ${session.events} events, ${session.simulatedSeconds.toFixed(3)} s simulated${session.lag ? `, ${lagText(session.lag)}` : ''}`);
  }
  for (const j of jobs) {
    const ends = j.files ? `files ${j.src}:${j.files.srcPath} -> ${j.dst}:${j.files.dstPath}` : `${end(j.src, j.srcOffset ?? 0)} -> ${end(j.dst, j.dstOffset ?? 0)}`;
    const bytes = j.files && !j.files.plan ? 'resolving and reserving' : `${formatBytes(j.bytesDone)} of ${formatBytes(j.lengthBytes)}`;
    lines.push(`  job ${j.id}: ${j.state}, ${ends}, ${bytes}${j.error ? ` (${j.error.message})` : ''}`);
  }
  return lines.join('\n');
}

/** GET /devices: every device the live host's drivers recorded, kind by kind in the registry's order (the rows of `dconnect devices`). */
/** GET /devices's answer (live/control-api.ts). */
export type LiveDevices = LiveDevicesAnswer;

/**
 * `devices --live`: the simulated `devices` table's columns that a live host knows (no BAR0 here),
 * each kind's printed by the kind (`DeviceKind.columns`); a kind this client does not know (a newer
 * host's) still gets its row.
 */
export function liveDevicesText(d: LiveDevices): string {
  const rows = d.devices.map((x) => {
    const k = deviceKinds.find((e) => e.kind === x.kind);
    const c = k ? k.columns(x) : { capacity: x.capacityBytes > 0 ? formatBytes(x.capacityBytes) : '-', id: x.serial ?? '-' };
    return [x.name, x.kind, `${x.box}/slot${x.slot}`, x.bdf, c.capacity, c.id];
  });
  return table(['NAME', 'KIND', 'BOX/SLOT', 'BDF', 'CAPACITY', 'SERIAL'], rows);
}


/** How a fabric's nodes run their model, for its messages. */
export function granularityText(burstBytes: number): string {
  return burstBytes > 0 ? `bursts of up to ${formatBytes(burstBytes)}` : 'per TLP';
}

/**
 * `dconnect up`, `down` and `status`: the fabric's nodes as background processes on this machine,
 * each `dconnect node` with its log in the state directory. `up` starts the boxes first, then the host,
 * waits for each to write its node record (so it listens), and restarts only the nodes that are not
 * running (a box that died is restarted on the same files and UDP port). The fabric's settings (topology,
 * pace, dilation, seed) are kept in the state directory at the first `up`, so every later node of that
 * directory runs with the same ones.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DconnectError } from '../core/errors.js';
import type { Topology } from '../topology/schema.js';
import { nodesOf } from './placement.js';
import type { Pace } from './realtime-scheduler.js';
import { isAlive, type NodeRecord, type StateDir } from './state-dir.js';

/** What every node of a state directory runs with (written at the first `up`). */
export interface FabricSettings {
  topology: Topology;
  pace: Pace;
  dilation: number;
  hardLimitMs?: number;
  seed: number;
  faults: string[];
  /** The address every node of `up` listens on. */
  listenHost: string;
  controlTcp?: { host: string; port: number };
  /** The host's watchdog: no progress this long while it waits on a box ends the session, ms. */
  peerTimeoutMs?: number;
  /** Serve NBD on this loopback TCP address too (the Unix socket nbd.sock is always there). */
  nbdTcp?: { host: string; port: number };
  /** `nbdTcp` is plain TCP (`--nbd-insecure`), not TLS-PSK. */
  nbdInsecure?: boolean;
  /** `--preallocate`: drive files are reserved whole on disk when created (file-store.ts). */
  preallocate?: boolean;
  /** Burst granularity's largest burst, bytes; 0 or absent (a fabric made before bursts ran live): per TLP. */
  burstBytes?: number;
}

export function settingsPath(state: StateDir): string {
  return `${state.root}/fabric.json`;
}

export function readSettings(state: StateDir): FabricSettings | null {
  const p = settingsPath(state);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as FabricSettings;
  } catch (e) {
    throw new DconnectError('BAD_STATE', `${p} is not valid JSON: ${(e as Error).message}`, 'remove the state directory (its drives too) or fix the file');
  }
}

export function writeSettings(state: StateDir, s: FabricSettings): void {
  writeFileSync(settingsPath(state), JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
}

/** How long a node may take to start listening, ms. */
const START_TIMEOUT_MS = 20_000;
/** How long `down` waits for a node to exit after SIGTERM before SIGKILL, ms. */
const STOP_TIMEOUT_MS = 10_000;

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * V8 heap sizing for the node processes `up` starts. A node keeps its model's bytes (drive pages, host
 * memory, datagram buffers: ~20 MiB during an NBD write) outside a small JS heap (~14 MiB), and V8's
 * global limit is a multiple of the heap alone, so with the defaults the external bytes alone started a
 * full mark-compact every ~70 ms (24 on the host in a 128 MiB NBD write; --trace-gc). A 128 MiB
 * old-generation start leaves none, and 32 MiB semi-spaces let a turn's short-lived bursts and frames
 * die young. Measured in docs/performance.md (NBD write +14-22%, read +29%, CPU per MiB -15-30%).
 * Hand-started nodes (`dconnect node`) can take the same: `node --initial-old-space-size=128
 * --max-semi-space-size=32 dist/src/cli/main.js node ...` in a checkout (V8 refuses the first in NODE_OPTIONS).
 */
export const NODE_HEAP_FLAGS: readonly string[] = ['--initial-old-space-size=128', '--max-semi-space-size=32'];

/** Starts `dconnect node --name NAME` in the background; resolves with its record once it listens. */
export async function startNode(state: StateDir, name: string, listenPort: number): Promise<NodeRecord> {
  const s = readSettings(state)!;
  const log = openSync(state.logPath(name), 'a', 0o600);
  // DCONNECT_NODE_FLAGS: Node flags for the node processes (e.g. --cpu-prof, --inspect), for profiling
  // and debugging; after NODE_HEAP_FLAGS, so a flag given there wins.
  const flags = (process.env.DCONNECT_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const args = [...NODE_HEAP_FLAGS, ...flags, MAIN, 'node', '--name', name, '--state', state.root, '--listen', `${s.listenHost}:${listenPort}`];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code, signal) => (exited = code ?? (signal ? 128 : 1)));
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const rec = state.readNodeRecord(name);
    if (rec && rec.pid === child.pid) return rec;
    if (exited !== null) break;
    await sleep(50);
  }
  if (exited === null) child.kill('SIGKILL');
  throw new DconnectError('NODE_START', `node ${name} did not start${exited !== null ? ` (it exited with ${exited})` : ` within ${START_TIMEOUT_MS / 1000} s`}; the end of its log (${state.logPath(name)}):\n${tail(state.logPath(name))}`, 'fix what the log says, then dconnect up again');
}

export interface NodeStatus {
  name: string;
  role: 'host' | 'box';
  pid: number | null;
  running: boolean;
  udp: { host: string; port: number } | null;
  control: NodeRecord['control'] | null;
  /** A box's last report (lag, its own cables' faults), from its node record. */
  report: unknown;
}

export function nodeStatuses(state: StateDir, t: Topology): NodeStatus[] {
  return nodesOf(t).map((n) => {
    const rec = state.readNodeRecord(n.name);
    return { name: n.name, role: n.role, pid: rec?.pid ?? null, running: rec !== null && isAlive(rec.pid), udp: rec?.udp ?? null, control: rec?.control ?? null, report: rec?.report ?? null };
  });
}

/** Starts every node of the fabric that is not running (boxes first); returns the ones it started. */
export async function up(state: StateDir, t: Topology, say: (line: string) => void): Promise<{ started: string[]; nodes: NodeStatus[] }> {
  const started: string[] = [];
  state.fabricKey(true); // before any node starts: every node reads it (datagram-auth.ts)
  const order = [...nodesOf(t).filter((n) => n.role === 'box'), ...nodesOf(t).filter((n) => n.role === 'host')];
  for (const n of order) {
    const rec = state.readNodeRecord(n.name);
    if (rec && isAlive(rec.pid)) continue;
    // A node restarted takes its old port, so its peers' addresses for it stay right.
    let r: NodeRecord;
    try {
      r = await startNode(state, n.name, rec?.udp.port ?? 0);
    } catch (e) {
      // Roll back: a fabric half up (a box with no host) serves nobody and would need a `down`.
      for (const name of started.reverse()) await stopNode(state, name, say);
      throw e;
    }
    say(`started ${n.role} ${n.name}: pid ${r.pid}, udp ${r.udp.host}:${r.udp.port}${r.control ? `, control ${r.control.socket}${r.control.tcp ? ` and http://${r.control.tcp.host}:${r.control.tcp.port}` : ''}` : ''}${r.nbd ? `, NBD ${r.nbd.socket}${r.nbd.tcp ? ` and ${readSettings(state)?.nbdInsecure ? 'nbd' : 'nbds'}://${r.nbd.tcp.host}:${r.nbd.tcp.port}` : ''}` : ''}; log ${state.logPath(n.name)}`);
    started.push(n.name);
  }
  return { started, nodes: nodeStatuses(state, t) };
}

/** Stops every running node (host first): SIGTERM, then SIGKILL after STOP_TIMEOUT_MS. */
export async function down(state: StateDir, t: Topology, say: (line: string) => void): Promise<string[]> {
  const stopped: string[] = [];
  const order = [...nodesOf(t).filter((n) => n.role === 'host'), ...nodesOf(t).filter((n) => n.role === 'box')];
  for (const n of order) if (await stopNode(state, n.name, say)) stopped.push(n.name);
  return stopped;
}

/** Stops one node by its record (SIGTERM, then SIGKILL after STOP_TIMEOUT_MS) and removes the record; true if it was running. */
async function stopNode(state: StateDir, name: string, say: (line: string) => void): Promise<boolean> {
  const rec = state.readNodeRecord(name);
  if (!rec) return false;
  const alive = isAlive(rec.pid);
  if (alive) {
    process.kill(rec.pid, 'SIGTERM');
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (isAlive(rec.pid) && Date.now() < deadline) await sleep(50);
    if (isAlive(rec.pid)) {
      process.kill(rec.pid, 'SIGKILL');
      say(`${name} (pid ${rec.pid}) did not stop in ${STOP_TIMEOUT_MS / 1000} s: killed`);
    } else say(`stopped ${name} (pid ${rec.pid})`);
  }
  state.removeNodeRecord(name);
  return alive;
}

/**
 * CPU time of a live fabric's node processes, for the benches (bench/live.ts, bench/nbd.ts): user +
 * system, from /proc/<pid>/stat, found through the state directory's node records. A node's CPU per
 * MiB moved is steadier than the wall time on a shared machine. All threads, and the main thread alone
 * (`NAME main`, /proc/<pid>/task/<pid>/stat): the rest is V8's helpers, whose optimizing compiles and
 * concurrent marking took as much CPU as the main thread in a fresh fabric's first 128 MiB NBD write
 * (docs/performance.md), so the two together overstate what the model and the data path cost.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const MiB = 1 << 20;

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on Linux everywhere in practice). */
const CLOCK_TICKS_PER_S = 100;

/** CPU time (user + system, ms) each node process of the fabric in `stateDir` has used so far; a node without a record or /proc is left out. */
export function nodeCpuMs(stateDir: string): Record<string, number> {
  const out: Record<string, number> = {};
  let names: string[] = [];
  try {
    names = readdirSync(join(stateDir, 'nodes')).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const { pid } = JSON.parse(readFileSync(join(stateDir, 'nodes', `${name}.json`), 'utf8')) as { pid: number };
      out[name] = statCpuMs(`/proc/${pid}/stat`);
      out[`${name} main`] = statCpuMs(`/proc/${pid}/task/${pid}/stat`);
    } catch {
      /* gone, or not Linux */
    }
  }
  return out;
}

/** User + system CPU ms of a /proc stat file (a process's, or one thread's). */
function statCpuMs(path: string): number {
  const stat = readFileSync(path, 'utf8');
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis): utime is the 14th field, stime the 15th.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLOCK_TICKS_PER_S;
}

/** CPU-ms per MiB moved of each node (and of its main thread, `NAME main`) between two `nodeCpuMs` readings. */
export function cpuMsPerMiB(before: Record<string, number>, after: Record<string, number>, bytes: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, ms] of Object.entries(after)) if (before[name] !== undefined) out[name] = +((ms - before[name]) / (bytes / MiB)).toFixed(3);
  return out;
}

/** The entries of a `nodeCpuMs`/`cpuMsPerMiB` record that count a node's all threads (not `NAME main`). */
export const allThreadEntries = (c: Record<string, number>): [string, number][] => Object.entries(c).filter(([n]) => !n.endsWith(' main'));

/** `box0 7.64 (main thread 5.10), host 1.29 (main thread 1.01)`, or 'not measured'. */
export const cpuLine = (c: Record<string, number>): string =>
  allThreadEntries(c)
    .map(([n, ms]) => `${n} ${ms.toFixed(2)}${c[`${n} main`] !== undefined ? ` (main thread ${c[`${n} main`].toFixed(2)})` : ''}`)
    .join(', ') || 'not measured';

/**
 * CPU time of a live fabric's node processes, for the benches (bench/live.ts, bench/nbd.ts): user +
 * system, all threads, from /proc/<pid>/stat, found through the state directory's node records. A
 * node's CPU per MiB moved is steadier than the wall time on a shared machine.
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
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces, so split after its closing parenthesis): utime is the 14th field, stime the 15th.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = ((Number(rest[11]) + Number(rest[12])) * 1000) / CLOCK_TICKS_PER_S;
    } catch {
      /* gone, or not Linux */
    }
  }
  return out;
}

/** CPU-ms per MiB moved of each node between two `nodeCpuMs` readings. */
export function cpuMsPerMiB(before: Record<string, number>, after: Record<string, number>, bytes: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, ms] of Object.entries(after)) if (before[name] !== undefined) out[name] = +((ms - before[name]) / (bytes / MiB)).toFixed(3);
  return out;
}

/** `box0 7.64, host 1.29`, or 'not measured'. */
export const cpuLine = (c: Record<string, number>): string => Object.entries(c).map(([n, ms]) => `${n} ${ms.toFixed(2)}`).join(', ') || 'not measured';

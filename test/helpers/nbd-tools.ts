/**
 * The Debian NBD tools as the tests run them (nbdinfo, nbdcopy, nbdsh, nbdkit, qemu-img, qemu-io):
 * Debian's python3 (with python3-libnbd) first on PATH for nbdsh, a check that a tool is there, and a
 * runner that never throws and never blocks the event loop (a server under test may be in-process).
 */
import { execFile, spawnSync } from 'node:child_process';

export const TOOL_ENV = { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}`, LIBNBD_DEBUG: '0' };

/** Whether `cmd args` runs and exits 0 (within 10 s). */
export function have(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { env: TOOL_ENV, stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** The skip message when tools are missing, naming the Debian packages. */
export const missing = (what: string): string => `${what} not installed (Debian: apt-get install libnbd-bin python3-libnbd nbdkit qemu-utils)`;

/** Runs a tool; its exit code (null if killed or not started), stdout and stderr. `env` adds variables. */
export function runTool(cmd: string, args: string[], timeoutMs = 30_000, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...TOOL_ENV, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

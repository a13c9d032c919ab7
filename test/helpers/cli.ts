/** The dconnect CLI as the live tests run it: a child process with a time limit. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Any one command's limit, ms (a copy of a few MiB takes well under a second here). */
export const COMMAND_MS = 60_000;

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `dconnect ARGS` to its end (at most COMMAND_MS). */
export function dconnect(args: string[]): CliRun {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: COMMAND_MS });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** As `dconnect`, failing the test (with its stderr) unless it exits 0. */
export function mustRun(args: string[]): CliRun {
  const r = dconnect(args);
  assert.equal(r.status, 0, `dconnect ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r;
}

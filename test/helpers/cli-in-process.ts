/** The dconnect program run in this process (createProgram through runCli), its output captured: no child process. */
import { runCli } from '../../src/cli/program.js';

export interface InProcessRun {
  /** The exit status the executable would have: runCli's, else the one the command set, else 0. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `dconnect ARGS` in-process; process.exitCode is left as it was. */
export async function dconnectIn(...args: string[]): Promise<InProcessRun> {
  let stdout = '';
  let stderr = '';
  const io = { out: { write: (s: string) => (stdout += s) }, err: { write: (s: string) => (stderr += s) } };
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    const code = await runCli(['node', 'dconnect', ...args], io);
    return { code: code ?? Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    process.exitCode = before;
  }
}

/**
 * Where a command's output goes: the process's stdout and stderr when `dconnect` runs, a buffer when a
 * test runs the program in-process (`createProgram(io)`). Commands write their results to `out` and
 * notes, progress and errors to `err`, as they would to the streams.
 */
export interface Output {
  write(text: string): unknown;
  /** A terminal: progress is drawn as a bar instead of plain lines. */
  readonly isTTY?: boolean;
}

export interface Io {
  out: Output;
  err: Output;
}

/** The process's own streams. */
export const processIo: Io = { out: process.stdout, err: process.stderr };

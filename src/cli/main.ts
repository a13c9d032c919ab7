#!/usr/bin/env node
import { runCli } from './program.js';

/** The `dconnect` executable: the program (program.ts, one module per command in commands/) run on this process's arguments. */

// A closed stdout or stderr (dconnect status | head -1) ends the command quietly, not with an EPIPE stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

const code = await runCli(process.argv);
if (code !== undefined) process.exit(code);

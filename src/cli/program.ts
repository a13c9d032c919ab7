import { Command, CommanderError } from 'commander';
import { DconnectError } from '../core/errors.js';
import type { CliCommand } from './command.js';
import { completionCommand } from './commands/completion.js';
import { copyCommand } from './commands/copy.js';
import { devicesCommand } from './commands/devices.js';
import { downCommand } from './commands/down.js';
import { linksCommand } from './commands/links.js';
import { lsCommand } from './commands/ls.js';
import { mergeCommand } from './commands/merge.js';
import { nodeCommand } from './commands/node.js';
import { reproCommand } from './commands/repro.js';
import { statusCommand } from './commands/status.js';
import { sweepCommand } from './commands/sweep.js';
import { upCommand } from './commands/up.js';
import { viewCommand } from './commands/view.js';
import { processIo, type Io } from './io.js';
import { withState } from './live-format.js';

/** The commands, in the order `dconnect --help` lists them; each module builds its own. */
const COMMANDS: ((io: Io) => CliCommand)[] = [devicesCommand, copyCommand, lsCommand, upCommand, nodeCommand, statusCommand, downCommand, viewCommand, linksCommand, reproCommand, sweepCommand, mergeCommand, completionCommand];

/**
 * The `dconnect` program, not yet parsed: nothing runs and nothing is printed until
 * `parseAsync(['node', 'dconnect', ...args])`. Commander's own output (help, usage errors) and the
 * commands' results go to `io`; usage errors throw a CommanderError instead of exiting.
 */
export function createProgram(io: Io = processIo): Command {
  const program = new Command('dconnect')
    .description('Direct Connect (NEC ExpEther, 2012) as an executable model: direct SSD-to-SSD moves through a DC buffer in an Ethernet-attached I/O box')
    .version('0.1.0')
    .showHelpAfterError()
    // Usage errors (unknown option, bad choice, missing argument, conflicting options) exit 2 like every other bad input; commander would exit 1.
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.out.write(s), writeErr: (s) => void io.err.write(s) });
  for (const build of COMMANDS) program.addCommand(build(io).copyInheritedSettings(program));
  return program;
}

/** Exit status of bad input: a usage error or a DconnectError (the README's exit codes). */
export const BAD_INPUT_EXIT = 2;

/**
 * Runs `dconnect` on `argv` (node's: the first two entries are the runtime and the script). Returns
 * the exit status when the command ended early (help or version: 0; bad input: 2, its message and
 * hint written to `io.err`), undefined when the command ran (it sets process.exitCode if its result
 * says so: 3 when a copy did not verify, 1 when a run failed).
 */
export async function runCli(argv: readonly string[], io: Io = processIo): Promise<number | undefined> {
  const program = createProgram(io);
  try {
    await program.parseAsync(argv);
    return undefined;
  } catch (e) {
    // Commander has already printed its message (and help) for these.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : BAD_INPUT_EXIT;
    if (e instanceof DconnectError) {
      io.err.write(`dconnect: error [${e.code}]: ${e.message}\n`);
      // A hint's commands carry the --state this command was given, so they work when pasted.
      const state = program.commands.find((c) => c.getOptionValueSource('state') === 'cli')?.opts().state as string | undefined;
      if (e.hint) io.err.write(`  hint: ${state === undefined ? e.hint : withState(e.hint, state)}\n`);
      return BAD_INPUT_EXIT;
    }
    throw e;
  }
}

import type { Command } from 'commander';
import { CliCommand } from '../command.js';
import { completionScript, SHELLS } from '../completion.js';
import type { Io } from '../io.js';

/** `completion bash|zsh`: the script is generated from the program this command is part of. */
export function completionCommand(io: Io): CliCommand {
  return new CliCommand('completion')
    .description('print a shell completion script for dconnect, generated from its commands: source <(dconnect completion bash), or for zsh source <(dconnect completion zsh)')
    .argument('<shell>', `the shell: ${SHELLS.join(' or ')}`)
    .action((shell: string, _o: unknown, cmd: Command) => {
      io.out.write(completionScript(cmd.parent ?? cmd, shell));
    });
}

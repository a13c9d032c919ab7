import { CliCommand } from '../command.js';
import { jsonOption, stateOption, type JsonOptions, type StateOptions } from '../options.js';

export type StatusOptions = StateOptions & JsonOptions;

export function statusCommand(): CliCommand {
  return new CliCommand('status')
    .description('the live fabric: each node (role, pid, addresses), the host session and each job (state, bytes done)')
    .addOption(stateOption())
    .addOption(jsonOption())
    .action(async (o: StatusOptions) => {
      const { statusAction } = await import('../live.js');
      await statusAction(o);
    });
}

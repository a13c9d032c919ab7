import { CliCommand } from '../command.js';
import { jsonOption, stateOption, type JsonOptions, type StateOptions } from '../options.js';

export type DownOptions = StateOptions & JsonOptions;

export function downCommand(): CliCommand {
  return new CliCommand('down')
    .description('stop the live fabric\'s nodes cleanly (SIGTERM; SIGKILL after 10 s); drives and job records stay in the state directory')
    .addOption(stateOption())
    .addOption(jsonOption())
    .action(async (o: DownOptions) => {
      const { downAction } = await import('../live.js');
      await downAction(o);
    });
}

import { CliCommand } from '../command.js';
import { jsonOption, stateOption, type JsonOptions, type StateOptions } from '../options.js';

export interface ViewOptions extends StateOptions, JsonOptions {
  replay?: string;
  out?: string;
}

export function viewCommand(): CliCommand {
  return new CliCommand('view')
    .description("the web view of a live fabric (served by the host's control API on its loopback TCP address: dconnect up --control-tcp 127.0.0.1:PORT): the topology, each cable coloured by its utilisation, bytes and job progress, a few times a second; prints the URL to open")
    .addOption(stateOption())
    .option('--replay <file>', 'instead, write a page that replays a trace-event file of a simulated run (copy --trace-events) with a time slider, into --out')
    .option('--out <file>', 'with --replay: the HTML page to write (it loads nothing from anywhere)')
    .addOption(jsonOption())
    .requires('replay', 'out', 'dconnect view --replay trace.json --out view.html')
    .requires('out', 'replay', 'dconnect view --replay trace.json --out view.html')
    .action(async (o: ViewOptions) => {
      const { viewAction } = await import('../view.js');
      await viewAction(o);
    });
}

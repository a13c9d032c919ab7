import { listLinks } from '../../runtime/capture.js';
import { CliCommand } from '../command.js';
import type { Io } from '../io.js';
import { jsonOption, setOption, topologyOf, topologyOption, type JsonOptions, type TopologyOptions } from '../options.js';

export type LinksOptions = TopologyOptions & JsonOptions;

export function linksCommand(io: Io): CliCommand {
  return new CliCommand('links')
    .description("list the topology's links (cables) by the names --capture takes")
    .addOption(topologyOption())
    .addOption(setOption())
    .addOption(jsonOption())
    .action((o: LinksOptions) => {
      const links = listLinks(topologyOf(o).topology);
      io.out.write(o.json ? JSON.stringify({ links }) + '\n' : links.join('\n') + '\n');
    });
}

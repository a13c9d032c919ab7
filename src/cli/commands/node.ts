import { CliCommand } from '../command.js';
import type { LiveFabricOptions } from '../live.js';
import { addLiveFabricOptions, repeatable, setOption, stateOption, topologyOf, topologyOption, type TopologyOptions } from '../options.js';

export interface NodeOptions extends LiveFabricOptions, TopologyOptions {
  name: string;
  listen?: string;
  peer?: string[];
  keyFile?: string;
}

export function nodeCommand(): CliCommand {
  return addLiveFabricOptions(
    new CliCommand('node')
      .description('run one node of a live fabric in the foreground (for nodes on several machines); dconnect up runs them for you on one')
      .requiredOption('--name <node>', "which node: 'host' or a box's name (box0)")
      .addOption(topologyOption())
      .addOption(setOption())
      .addOption(stateOption())
      .option('--listen <host:port>', 'the UDP address to listen on (port 0: any free one)')
      .option('--peer <name=host:port>', "a box's address, for the host node (repeatable); default: from the state directory's node records", repeatable)
      .option('--key-file <file>', "the fabric key (0600), for a node on another machine than the host: a copy of the host's <state>/fabric.key (scp it); default: <state>/fabric.key"),
  ).action(async (o: NodeOptions) => {
    const { nodeAction } = await import('../live.js');
    await nodeAction(topologyOf(o).topology, o);
  });
}

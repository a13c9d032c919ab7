import { Option, type Command } from 'commander';
import { METRICS, type Metric } from '../../experiments/metrics.js';
import { CliCommand } from '../command.js';
import { fidelityOf, fidelityOption, granularityOption, jsonOption, repeatable, seedOption, setOption, shardOption, topologyOf, topologyOption, type JsonOptions, type RunModeOptions, type SeedOptions, type TopologyOptions } from '../options.js';

export interface SweepOptions extends TopologyOptions, SeedOptions, RunModeOptions, JsonOptions {
  param: string[];
  metric: Metric;
  via: string;
  size: string;
  out: string;
  threads?: string;
  shard?: string;
}

export function sweepCommand(): CliCommand {
  return new CliCommand('sweep')
    .description('run the preset across parameter values and chart a metric (what the paper could not measure)')
    .requiredOption('--param <path=values>', 'a parameter and its values, repeatable: host.lanes=1,2,4,8  depth=1..8  ssd.writeMBps=250,500,1000', repeatable, [] as string[])
    .addOption(new Option('--metric <name>', 'what to report').choices([...METRICS]).default('mbPerSec'))
    .addOption(new Option('--via <path>', 'dc-buffer (direct) or host (conventional)').default('dc-buffer'))
    .option('--size <size>', 'bytes moved per point', '64MiB')
    .addOption(seedOption())
    .option('--out <dir>', 'where to write sweep.json/.svg/.png', 'results')
    .option('--threads <n>', 'worker threads (default: one per core)')
    .addOption(fidelityOption())
    .addOption(topologyOption())
    .addOption(setOption())
    .addOption(shardOption())
    .addOption(granularityOption())
    .addOption(jsonOption())
    .action(async (o: SweepOptions, cmd: Command) => {
      const loaded = topologyOf(o);
      const { sweepAction } = await import('../experiments.js');
      await sweepAction({ ...o, fidelity: fidelityOf(o, cmd.getOptionValueSource('fidelity') === 'cli') }, loaded);
    });
}

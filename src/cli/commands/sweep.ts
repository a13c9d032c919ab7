import { Option, type Command } from 'commander';
import { METRICS, type Metric } from '../../experiments/metrics.js';
import { CliCommand } from '../command.js';
import type { Io } from '../io.js';
import { addJobRunOptions, fidelityOf, jsonOption, repeatable, seedOption, topologyOf, type JobRunOptions, type JsonOptions, type SeedOptions } from '../options.js';

export interface SweepOptions extends JobRunOptions, SeedOptions, JsonOptions {
  param: string[];
  metric: Metric;
  via: string;
  size: string;
  out: string;
}

export function sweepCommand(io: Io): CliCommand {
  return addJobRunOptions(
    new CliCommand('sweep')
      .description('run the preset across parameter values and chart a metric (what the paper could not measure)')
      .requiredOption('--param <path=values>', 'a parameter and its values, repeatable: host.lanes=1,2,4,8  depth=1..8  ssd.writeMBps=250,500,1000', repeatable, [] as string[])
      .addOption(new Option('--metric <name>', 'what to report').choices([...METRICS]).default('mbPerSec'))
      .addOption(new Option('--via <path>', "dc-buffer (direct), cmb (direct through an SSD's Controller Memory Buffer), nearest (direct through the nearest relay) or host (conventional)").default('dc-buffer'))
      .option('--size <size>', 'bytes moved per point', '64MiB')
      .addOption(seedOption())
      .option('--out <dir>', 'where to write sweep.json/.svg/.png', 'results'),
  )
    .addOption(jsonOption())
    .action(async (o: SweepOptions, cmd: Command) => {
      const loaded = topologyOf(o);
      const { sweepAction } = await import('../experiments.js');
      await sweepAction(io, { ...o, fidelity: fidelityOf(o, cmd.getOptionValueSource('fidelity') === 'cli') }, loaded);
    });
}

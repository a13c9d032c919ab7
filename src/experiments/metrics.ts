/** What a sweep can report for each point (a module of its own, so the CLI can list them cheaply). */
export const METRICS = ['mbPerSec', 'simulatedSeconds', 'hostUpstreamPayloadBytes', 'hostDownstreamPayloadBytes'] as const;
export type Metric = (typeof METRICS)[number];

/** A metric as a chart's reader reads it: the axis title and the title's noun. */
export const METRIC_TITLES: Record<Metric, { axis: string; noun: string }> = {
  mbPerSec: { axis: 'Bandwidth (MB/s)', noun: 'Bandwidth' },
  simulatedSeconds: { axis: 'Simulated time of the move (s)', noun: 'Time of the move' },
  hostUpstreamPayloadBytes: { axis: 'Host link payload upstream (bytes)', noun: 'Host link payload upstream' },
  hostDownstreamPayloadBytes: { axis: 'Host link payload downstream (bytes)', noun: 'Host link payload downstream' },
};

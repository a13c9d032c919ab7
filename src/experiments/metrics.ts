/** What a sweep can report for each point (a module of its own, so the CLI can list them cheaply). */
export const METRICS = ['mbPerSec', 'simulatedSeconds', 'hostUpstreamPayloadBytes', 'hostDownstreamPayloadBytes'] as const;
export type Metric = (typeof METRICS)[number];

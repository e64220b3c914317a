// Latency histograms (HdrHistogram, microsecond resolution) summarised in milliseconds.
import * as hdr from "hdr-histogram-js";

export interface LatencySummary {
  count: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
  mean: number | null;
}

export class Histogram {
  readonly h: hdr.Histogram;
  count: number;

  constructor() {
    this.h = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 3_600_000_000,
      numberOfSignificantValueDigits: 3,
    });
    this.count = 0;
  }

  recordMs(ms: number): void {
    this.h.recordValue(Math.max(1, Math.round(ms * 1000)));
    this.count++;
  }

  summary(): LatencySummary {
    if (this.count === 0) return { count: 0, p50: null, p90: null, p99: null, p999: null, max: null, mean: null };
    const ms = (us: number) => Number((us / 1000).toFixed(2));
    return {
      count: this.count,
      p50: ms(this.h.getValueAtPercentile(50)),
      p90: ms(this.h.getValueAtPercentile(90)),
      p99: ms(this.h.getValueAtPercentile(99)),
      p999: ms(this.h.getValueAtPercentile(99.9)),
      max: ms(this.h.maxValue),
      mean: ms(this.h.mean),
    };
  }
}

/** autocannon's latency object (ms) in the same shape. */
export function fromAutocannon(latency: AutocannonLatency): LatencySummary {
  return {
    count: latency.totalCount ?? null,
    p50: latency.p50,
    p90: latency.p90,
    p99: latency.p99,
    p999: latency.p99_9 ?? latency.p999 ?? null,
    max: latency.max,
    mean: latency.mean,
  };
}

/** The part of autocannon's latency histogram read above (ms). */
export interface AutocannonLatency {
  totalCount?: number;
  p50: number;
  p90: number;
  p99: number;
  p99_9?: number;
  p999?: number;
  max: number;
  mean: number;
}

// The part of autocannon (9.x) that the benchmark uses; it ships no types.
declare module "autocannon" {
  export interface Request {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
    setupRequest?: (req: Request) => Request;
  }

  export interface Options {
    url: string;
    connections?: number;
    duration?: number;
    pipelining?: number;
    timeout?: number;
    headers?: Record<string, string>;
    requests?: Request[];
  }

  export interface Histogram {
    totalCount?: number;
    p50: number;
    p90: number;
    p99: number;
    p99_9?: number;
    max: number;
    mean: number;
  }

  export interface Result {
    connections: number;
    duration: number;
    requests: Histogram & { total: number };
    latency: Histogram;
    errors: number;
    timeouts: number;
    non2xx: number;
    "2xx": number;
  }

  export default function autocannon(options: Options, callback: (err: Error | null, result: Result) => void): unknown;
}

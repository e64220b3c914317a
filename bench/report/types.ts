// The shape of a run's results (bench/results/*.json).

import type { FanoutResult } from "../lib/fanout.ts";
import type { Settle } from "../lib/system.ts";
import type { ShardsResult } from "../run/shards-phase.ts";
import type { PushCost, ThroughputRow } from "../scenarios/files.ts";
import type { socketFloor, writeFloor } from "../scenarios/floors.ts";
import type { HttpSummary, history } from "../scenarios/http.ts";
import type { capacity, OpenedGroup, scale } from "../scenarios/sockets.ts";

/** What `attempt` adds to each scenario's result: where the machine's CPU went meanwhile. */
export interface ScenarioContext {
  wallS: number;
  settleBefore: Settle | null;
  serverCores: number;
  loadGeneratorCores: number;
  otherProcessesCores: number;
}

export interface Failed {
  error: string;
}

type Measured<T> = (T & { context: ScenarioContext }) | Failed;

/** A socket scenario's result: the group it opened, then what ran on it. */
type OnGroup<T> = Omit<OpenedGroup, "group"> & { members: number } & T;

export interface Scenarios {
  seeding?: { apiMs: number; historyMs?: number; historyMessages?: number };
  ceiling?: Measured<HttpSummary>;
  write?: Measured<HttpSummary>;
  history?: Measured<Awaited<ReturnType<typeof history>>>;
  fanout?: Measured<OnGroup<FanoutResult>>;
  browser?: Measured<OnGroup<FanoutResult>>;
  capacity10?: Measured<OnGroup<Awaited<ReturnType<typeof capacity>>>>;
  capacity100?: Measured<OnGroup<Awaited<ReturnType<typeof capacity>>>>;
  scale?: Measured<Awaited<ReturnType<typeof scale>>>;
  /** POST /messages against the write floor (bench/floor/), interleaved rounds. */
  "floor-write"?: Measured<Awaited<ReturnType<typeof writeFloor>>>;
  /** Idle sockets and a broadcast on Parley's room against the socket floor's object. */
  "floor-sockets"?: Measured<Awaited<ReturnType<typeof socketFloor>>>;
  "wrangler-dev"?: Measured<{ ceiling: HttpSummary; write: HttpSummary }>;
  attachments?: Measured<{ server: string; parley: ThroughputRow[]; floor: ThroughputRow[] }>;
  push?: Measured<PushCost>;
  /** The capacity simulation, one row per shard count (shards1, shards2, shards4). */
  [shards: `shards${number}`]: Measured<ShardsResult> | undefined;
}

export interface Row {
  scenario: string;
  result: string;
  p50: string;
  p90: string;
  p99: string;
  p999: string;
  max: string;
  errors: string;
  dropped: string;
  target: string;
  met: string;
  others: string;
}

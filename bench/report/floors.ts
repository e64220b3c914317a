// The table's rows for Parley against its floors (bench/floor/): each figure with its ratio and target.
import { type AddRow, type FailedRow, fmt, TARGETS } from "./table.ts";
import type { Scenarios } from "./types.ts";

const times = (ratio: number | null) => `${fmt(ratio, 2)}×`;
const atMost = (ratio: number | null, limit: number) => (ratio === null ? null : ratio <= limit);

export function writeFloorRows(s: Scenarios, add: AddRow, failed: FailedRow): void {
  const w = s["floor-write"];
  if (!w) return;
  if ("error" in w) {
    failed("floor-write", w, "≥ 0.9 of the floor");
    return;
  }
  const { parley: p, floor: f } = w.median;
  const rounds = `median of ${w.rounds} × ${w.roundS} s`;
  add(
    "write vs floor: req/s",
    `${fmt(p.okPerSecond, 0)} vs floor ${fmt(f.okPerSecond, 0)} req/s = ${fmt(w.ratios.okPerSecond, 2)} of the floor (${rounds})`,
    null,
    w.errors,
    null,
    `≥ ${TARGETS.floorWriteRatio} of the floor`,
    w.ratios.okPerSecond === null ? null : w.ratios.okPerSecond >= TARGETS.floorWriteRatio,
    w.context,
  );
  add(
    "cost vs floor: CPU / message",
    `${fmt(p.cpuPerMessageMs, 3)} vs floor ${fmt(f.cpuPerMessageMs, 3)} ms = ${times(w.ratios.cpuPerMessage)} (work left behind included)`,
    null,
    w.errors,
    null,
    `≤ ${TARGETS.floorCpuRatio}× the floor`,
    atMost(w.ratios.cpuPerMessage, TARGETS.floorCpuRatio),
    w.context,
  );
}

export function socketFloorRows(s: Scenarios, add: AddRow, failed: FailedRow): void {
  const k = s["floor-sockets"];
  if (!k) return;
  if ("error" in k) {
    failed("floor-sockets", k, "≤ 1.1× memory, ≤ 1.5× broadcast");
    return;
  }
  const { parley: p, floor: f } = k.median;
  const held = `held ${fmt(p.held, 0)} / ${fmt(f.held, 0)}`;
  add(
    `sockets vs floor: ${fmt(k.sockets, 0)} idle`,
    `${fmt(p.rssPerSocketAfterProbeKiB)} vs floor ${fmt(f.rssPerSocketAfterProbeKiB)} KiB/socket = ${times(k.ratios.rssPerSocket)} (from start ${fmt(p.rssPerSocketKiB)} vs ${fmt(f.rssPerSocketKiB)}); ${held}`,
    null,
    k.errors,
    k.droppedFrames,
    `≤ ${TARGETS.floorSocketMemoryRatio}× the floor`,
    atMost(k.ratios.rssPerSocket, TARGETS.floorSocketMemoryRatio),
    k.context,
  );
  add(
    `broadcast vs floor: ${fmt(k.sockets, 0)} sockets`,
    `to the last socket ${fmt(p.broadcastMs, 0)} vs floor ${fmt(f.broadcastMs, 0)} ms = ${times(k.ratios.broadcast)} (median of ${k.rounds * k.broadcasts})`,
    null,
    k.errors,
    k.droppedFrames,
    `≤ ${TARGETS.floorBroadcastRatio}× the floor`,
    atMost(k.ratios.broadcast, TARGETS.floorBroadcastRatio),
    k.context,
  );
}

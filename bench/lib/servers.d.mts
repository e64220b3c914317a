// Types for the part of servers.mjs that the e2e compression test also uses.
import type { WranglerSubset } from "./workerd.mjs";

export const wranglerBin: string;
export function wranglerEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
export function readWranglerConfig(root: string): WranglerSubset;

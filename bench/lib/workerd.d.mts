// Types for workerd.mjs, which the e2e compression test also uses.
export interface WranglerSubset {
  name?: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  d1: { binding: string; id: string }[];
  durableObjects: { name: string; className: string }[];
  ratelimits?: string[];
}

export function runtimePaths(): {
  workerdBin: string;
  workerdVersion: string;
  miniflareWorkers: string;
  miniflareVersion: string;
};

export function writeWorkerdConfig(options: {
  dir: string;
  bundleFile: string;
  persistDir: string;
  port: number;
  wrangler: WranglerSubset;
  vars: Record<string, string>;
  workerName?: string;
}): string;

// The one harness for starting and stopping servers: `npm run dev`, the soak, the benchmark and the
// end-to-end suite import it and nothing else of each other's.
export * from "./env.ts";
export * from "./processes.ts";
export * from "./servers.ts";
export * from "./workerd.ts";

// `npm run build:web`: bundles the browser side into public/dist/ (git-ignored; `npm run dev`,
// `npm test`, `npm run test:e2e` and `npm run deploy` run this first):
//   public/dist/app.js            the reference web client (web/app.ts, with parley/client inside)
//   public/dist/parley-client.js  parley/client as one ES module, for other browser apps
//   public/dist/scalar.js         the API reference viewer that /docs loads (copied from node_modules)

import { copyFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}public/dist`;

const common: BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  format: "esm",
  platform: "browser",
  // Browsers whose Web Crypto has X25519.
  target: ["chrome133", "firefox130", "safari17"],
  sourcemap: "linked",
  legalComments: "none",
  logLevel: "warning",
};

const started = Date.now();
rmSync(outdir, { recursive: true, force: true });
await Promise.all([
  build({ ...common, entryPoints: ["web/app.ts"], outfile: `${outdir}/app.js` }),
  build({ ...common, entryPoints: ["client/index.ts"], outfile: `${outdir}/parley-client.js` }),
]);
// The package exports no path to its standalone build, so it is copied from where npm puts it.
copyFileSync(`${root}node_modules/@scalar/api-reference/dist/browser/standalone.js`, `${outdir}/scalar.js`);
console.log(
  `build:web: public/dist/app.js, public/dist/parley-client.js, public/dist/scalar.js (${Date.now() - started} ms)`,
);

// Copy the built ES modules (dist/*.js) to server/console/vendor/, which the server serves at /console/vendor/
// and the console imports with a plain <script type="module"> (no bundler). `--check`: exit 1 when the committed
// copy differs from dist/ (run `npm run build` first), so the TypeScript source and what the console serves
// cannot drift.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const vendor = join(here, "..", "..", "..", "server", "console", "vendor");
const js = (dir) => readdirSync(dir).filter((f) => f.endsWith(".js")).sort();

const built = js(dist);
if (!built.includes("conversme.js")) {
  console.error(`${dist}/conversme.js is missing: run \`npm run build\` first`);
  process.exit(1);
}

if (process.argv.includes("--check")) {
  let vendored = [];
  try {
    vendored = js(vendor);
  } catch {
    // no vendor directory: everything below is reported missing
  }
  const problems = [];
  for (const f of built) {
    if (!vendored.includes(f)) problems.push(`missing: ${f}`);
    else if (!readFileSync(join(dist, f)).equals(readFileSync(join(vendor, f)))) problems.push(`differs: ${f}`);
  }
  for (const f of vendored) if (!built.includes(f)) problems.push(`not built from src: ${f}`);
  if (problems.length) {
    console.error(`server/console/vendor is stale (run \`npm run vendor\` in clients/js and commit):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`server/console/vendor matches dist (${built.length} modules)`);
} else {
  mkdirSync(vendor, { recursive: true });
  for (const f of js(vendor)) if (!built.includes(f)) rmSync(join(vendor, f));
  for (const f of built) copyFileSync(join(dist, f), join(vendor, f));
  console.log(`copied ${built.length} modules to ${vendor}`);
}

// Copies the plotting library from node_modules (installed by `npm ci` from the lockfile) into
// web/vendor/, which is what the server ships: the dashboard needs no build step at run time.
// `node tools/vendor.mjs --check` only compares and exits 1 when vendor/ is out of date.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(web, 'node_modules', 'uplot');
const version = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version;
const files = [
  ['dist/uPlot.esm.js', 'uPlot.esm.js'],
  ['dist/uPlot.min.css', 'uPlot.min.css'],
  ['LICENSE', 'uPlot.LICENSE.txt'],
];
const check = process.argv.includes('--check');
let stale = 0;
mkdirSync(join(web, 'vendor'), { recursive: true });
for (const [from, to] of files) {
  const src = readFileSync(join(pkg, from));
  const dst = join(web, 'vendor', to);
  let cur = null;
  try { cur = readFileSync(dst); } catch { /* missing */ }
  if (cur && cur.equals(src)) continue;
  stale++;
  if (check) console.error(`vendor/${to} differs from uplot ${version}`);
  else writeFileSync(dst, src);
}
if (check && stale) process.exit(1);
console.log(`uplot ${version}: ${check ? (stale ? 'stale' : 'up to date') : 'vendored'}`);

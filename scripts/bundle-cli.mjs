// Bundles the CLI (src/cli/main.ts and, as lazy chunks, each command file) into dist/cli/bundle/,
// so a start resolves and compiles a handful of files instead of ~100 ES modules (issue 14: fast
// start), and replaces tsc's dist/cli/main.js (the `bin`) with a shim that imports the bundle.
// Runs after tsc in `npm run build`; the rest of tsc's output stays for the library
// (dist/index.js), the e2fs worker and its hook modules.
//
// Every bundled module keeps the `import.meta.url` of its unbundled twin in dist/ (rewritten
// below), so `new URL('./worker.mjs', import.meta.url)`, `createRequire(import.meta.url)` and
// the paths to wasm/dist and fixtures/ resolve exactly as they do from tsc's output.
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const outdir = join(root, 'dist', 'cli', 'bundle');
const bin = join(root, 'dist', 'cli', 'main.js');

/** `import.meta.url` of the tsc output of `file` (src/x/y.ts → dist/x/y.js), relative to outdir. */
function twinUrlExpression(file) {
  const twin = join(root, 'dist', relative(src, file)).replace(/\.ts$/, '.js');
  const rel = relative(outdir, twin).split(sep).join('/');
  return `new URL(${JSON.stringify(rel.startsWith('.') ? rel : `./${rel}`)}, import.meta.url).href`;
}

/** Rewrites `import.meta.url` in every source file to its dist twin's URL (see the header). */
const twinMetaUrl = {
  name: 'twin-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.(ts|mjs)$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      return { contents: text.replaceAll('import.meta.url', twinUrlExpression(args.path)), loader: args.path.endsWith('.ts') ? 'ts' : 'js' };
    });
  },
};

// Chunks of an earlier build would otherwise pile up (their names carry content hashes).
rmSync(outdir, { recursive: true, force: true });

await build({
  entryPoints: { main: join(src, 'cli', 'main.ts') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // npm packages stay where npm put them: native addons and the emscripten glue locate their
  // files relative to themselves.
  packages: 'external',
  chunkNames: '[name]-[hash]',
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [twinMetaUrl],
});

// Source maps cost start-up time, so only --debug (which prints stacks) turns them on — before
// the bundle loads, since Node reads a module's map when it compiles it.
writeFileSync(
  bin,
  `#!/usr/bin/env node
// Written by scripts/bundle-cli.mjs: the CLI is the bundle of src/cli/main.ts in ./bundle/.
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
await import('./bundle/main.js');
`,
);
chmodSync(bin, 0o755);
rmSync(`${bin}.map`, { force: true });

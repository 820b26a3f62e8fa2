// Bundles the CLI once per command file (issue 14: fast start). A start then reads three files —
// the `bin` shim, dist/cli/commands/manifest.json and one bundle — instead of resolving and
// compiling ~100 ES modules. Runs after tsc and scripts/cli-manifest.mjs in `npm run build`; the
// rest of tsc's output stays for the library (dist/index.js), the e2fs worker and its hook modules.
//
// - dist/cli/bundle/<file>.js: src/cli/main.ts with src/cli/commands/index.ts replaced by a table
//   holding only that command file (imported statically), tree-shaken, npm packages external.
//   dist/cli/bundle/cli.js has no command file: --help, --version, group usage, unknown commands.
//   No code splitting on purpose: esbuild assigns files to shared chunks by their import graph
//   through barrels, so every command loaded most of the library as ~15 chunks.
// - dist/cli/main.js (tsc's output, the `bin`) is replaced by a shim that picks the bundle from
//   the manifest with run.ts's rule (two words, then one) and imports it; it turns source maps on
//   for --debug only (stacks then name src/*.ts), before the bundle loads.
// - Every bundled module keeps the `import.meta.url` of its tsc twin in dist/ (rewritten below), so
//   `new URL('./worker.mjs', import.meta.url)`, `createRequire(import.meta.url)` and the paths to
//   wasm/dist and fixtures/ resolve exactly as they do from tsc's output.
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const outdir = join(root, 'dist', 'cli', 'bundle');
const bin = join(root, 'dist', 'cli', 'main.js');
const manifestFile = join(root, 'dist', 'cli', 'commands', 'manifest.json');
const commandTable = join(src, 'cli', 'commands', 'index.ts');
/** The bundle for argv that names no command. */
const NO_COMMAND = 'cli.js';
/** Where the shebang keeps the user's NODE_EXTRA_CA_CERTS while node starts without it. */
const SAVED_CA_VAR = 'DISKWRIGHT_SAVED_NODE_EXTRA_CA_CERTS';

if (!existsSync(manifestFile)) throw new Error(`${manifestFile} is missing: run scripts/cli-manifest.mjs first`);
const { commandModules } = await import(pathToFileURL(join(root, 'dist', 'cli', 'commands', 'index.js')).href);
const files = commandModules.map((m) => m.file);
if (files.includes(NO_COMMAND)) throw new Error(`a command file may not be called ${NO_COMMAND}`);

/** `import.meta.url` of the tsc output of `file` (src/x/y.ts → dist/x/y.js), relative to outdir. */
function twinUrlExpression(file) {
  const twin = join(root, 'dist', relative(src, file)).replace(/\.ts$/, '.js');
  const rel = relative(outdir, twin).split(sep).join('/');
  return `new URL(${JSON.stringify(rel.startsWith('.') ? rel : `./${rel}`)}, import.meta.url).href`;
}

/** The command table of one bundle: `file`'s module only (none for cli.js). */
function commandTableFor(file) {
  if (file === NO_COMMAND) return 'export const commandModules = [];\n';
  const source = JSON.stringify(join(src, 'cli', 'commands', file.replace(/\.js$/, '.ts')));
  return `import * as module from ${source};\nexport const commandModules = [{ file: ${JSON.stringify(file)}, load: async () => module }];\n`;
}

/** Rewrites `import.meta.url` to the dist twin's URL and swaps in the bundle's command table. */
function sources(file) {
  return {
    name: 'diskwright-sources',
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/].*\.(ts|mjs)$/ }, (args) => {
        if (args.path === commandTable) return { contents: commandTableFor(file), loader: 'js', resolveDir: join(src, 'cli', 'commands') };
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        return { contents: text.replaceAll('import.meta.url', twinUrlExpression(args.path)), loader: args.path.endsWith('.ts') ? 'ts' : 'js' };
      });
    },
  };
}

// Bundles of an earlier build (or of a command file since removed) must not linger.
rmSync(outdir, { recursive: true, force: true });

await Promise.all(
  [...files, NO_COMMAND].map((file) =>
    build({
      entryPoints: [join(src, 'cli', 'main.ts')],
      outfile: join(outdir, file),
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      // npm packages stay where npm put them: native addons and the emscripten glue locate their
      // files relative to themselves.
      packages: 'external',
      sourcemap: 'linked',
      sourcesContent: false,
      legalComments: 'none',
      logLevel: 'warning',
      plugins: [sources(file)],
    }),
  ),
);

// The shebang starts node without NODE_EXTRA_CA_CERTS: node reads and parses that CA bundle at
// every start, before any JS runs (0.04–0.05 s of a 0.07 s start with Debian's 220 KB bundle),
// and diskwright makes no TLS connection. `env -S` (GNU coreutils ≥ 8.30, BSD/macOS env) splits
// the line and expands ${…} before `-u` removes the variable, so its value rides along under
// SAVED_CA_VAR and the shim puts it back: the commands diskwright runs (virt-install, qemu-img)
// get the user's environment unchanged. `node FILE` (tests, npm run demo) ignores the line.
const shim = `#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS ${SAVED_CA_VAR}=\${NODE_EXTRA_CA_CERTS} node
// Written by scripts/bundle-cli.mjs: runs the bundle of src/cli/main.ts built for the command in
// argv (the manifest says which command file holds it; the rule is findCommand's in run.ts).
import { readFileSync } from 'node:fs';

// The shebang moved NODE_EXTRA_CA_CERTS here so that node's start skips the CA bundle; children
// get it back (an empty value, which node ignores too, comes back as unset).
const savedCerts = process.env.${SAVED_CA_VAR};
if (savedCerts !== undefined) {
  delete process.env.${SAVED_CA_VAR};
  if (savedCerts !== '') process.env.NODE_EXTRA_CA_CERTS = savedCerts;
}

// Source maps cost start-up time, so only --debug (which prints stacks) turns them on — before
// the bundle loads, since Node reads a module's map when it compiles it.
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
const commands = JSON.parse(readFileSync(new URL('./commands/manifest.json', import.meta.url), 'utf8'));
const [first, second] = process.argv.slice(2);
const command = commands.find((c) => c.name === \`\${first} \${second}\`) ?? commands.find((c) => c.name === first);
await import(\`./bundle/\${command ? command.file : ${JSON.stringify(NO_COMMAND)}}\`);
`;
writeFileSync(bin, shim);
chmodSync(bin, 0o755);
rmSync(`${bin}.map`, { force: true });

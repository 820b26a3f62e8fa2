// The pinned e2fsprogs source (wasm/SOURCE: same package, version and hashes wasm/build.sh uses)
// and a native build of it with the suite's helper programs, both kept in the cache directory.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Parses wasm/SOURCE: `key=value` lines and `sha256 NAME HEX` lines. */
export function parseSourcePin(text) {
  const pin = { sha256: [] };
  for (const line of text.split('\n')) {
    const hash = /^sha256 (\S+) ([0-9a-f]{64})$/.exec(line);
    if (hash) pin.sha256.push({ name: hash[1], sum: hash[2] });
    else {
      const kv = /^([a-z0-9]+)=(.*)$/.exec(line);
      if (kv) pin[kv[1]] = kv[2];
    }
  }
  for (const key of ['package', 'version', 'suite', 'mirror']) {
    if (!pin[key]) throw new Error(`wasm/SOURCE: missing \`${key}=\``);
  }
  if (!pin.sha256.some((h) => h.name.endsWith('.dsc'))) throw new Error('wasm/SOURCE: no sha256 line for the .dsc');
  return pin;
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function hashesMatch(dir, pin) {
  return pin.sha256.every(({ name, sum }) => existsSync(join(dir, name)) && sha256(join(dir, name)) === sum);
}

/**
 * Makes sure `dir` holds the pinned source package files, downloading them with a private apt
 * configuration (as wasm/build.sh does; no root, no change to the host's apt state).
 */
export async function fetchSource(dir, pin, log) {
  if (hashesMatch(dir, pin)) return;
  log(`fetching ${pin.package} ${pin.version} source from ${pin.mirror}`);
  mkdirSync(join(dir, 'apt/lists/partial'), { recursive: true });
  mkdirSync(join(dir, 'apt/cache/archives/partial'), { recursive: true });
  const security = pin.mirror.replace(/debian$/, 'debian-security');
  writeFileSync(
    join(dir, 'apt/sources.list'),
    [`deb-src ${pin.mirror} ${pin.suite} main`, `deb-src ${pin.mirror} ${pin.suite}-updates main`, `deb-src ${security} ${pin.suite}-security main`, ''].join('\n'),
  );
  const aptOptions = [
    ['Dir::Etc::SourceList', join(dir, 'apt/sources.list')],
    ['Dir::Etc::SourceParts', '/nonexistent'],
    ['Dir::State::Lists', join(dir, 'apt/lists')],
    ['Dir::Cache', join(dir, 'apt/cache')],
    ['APT::Sandbox::User', 'root'],
  ].flatMap(([key, value]) => ['-o', `${key}=${value}`]);
  await execa('apt-get', [...aptOptions, '-qq', 'update'], { stdio: 'inherit' });
  await execa('apt-get', [...aptOptions, '-qq', 'source', '--download-only', `${pin.package}=${pin.version}`], { cwd: dir, stdio: 'inherit' });
  if (!hashesMatch(dir, pin)) throw new Error(`the downloaded ${pin.package} source does not match the hashes in wasm/SOURCE`);
}

/** Options of the native build (private uuid/blkid: no -dev packages needed); part of the stamp. */
const CONFIGURE_ARGS = ['--disable-nls', '--enable-libuuid', '--enable-libblkid', '--disable-fuse2fs', '--disable-uuidd'];
/** What `make check` in tests/ needs besides the programs (Makefile targets of tests/). */
const TEST_TARGETS = ['test_one', 'test_script', 'mke2fs.conf', 'test_data.tmp'];

/**
 * Unpacks (Debian patches applied) and builds the pinned source natively in `dir` unless a build of
 * exactly this source and configuration is already there. Returns true when it built.
 */
export async function buildNative(srcDir, dir, pin, { jobs, log }) {
  const stamp = join(dir, '.diskwright-built');
  const want = JSON.stringify({ sha256: pin.sha256, configure: CONFIGURE_ARGS, targets: TEST_TARGETS });
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return false;
  log(`building ${pin.package} ${pin.version} natively in ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  const dsc = pin.sha256.find((h) => h.name.endsWith('.dsc')).name;
  await execa('dpkg-source', ['--no-check', '--no-copy', '-x', join(srcDir, dsc), dir], { stdout: 'ignore' });
  const quiet = { cwd: dir, all: true };
  await step(execa('./configure', CONFIGURE_ARGS, quiet), 'configure');
  await step(execa('make', [`-j${jobs}`], quiet), 'make');
  await step(execa('make', ['-C', 'tests', ...TEST_TARGETS], quiet), 'make -C tests');
  writeFileSync(stamp, want);
  return true;
}

async function step(run, what) {
  try {
    await run;
  } catch (error) {
    const tail = String(error.all ?? '').split('\n').slice(-30).join('\n');
    throw new Error(`native ${what} failed:\n${tail}`, { cause: error });
  }
}

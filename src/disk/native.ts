import { existsSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The fs-native-extensions 1.5.1 addon (OFD locks, xattrs, punch-hole), loaded once per process.
 *
 * Why not a plain `require('fs-native-extensions')`: its binding.js finds the prebuilt addon
 * through require-addon, which loads a semver and module-resolution stack (bare-*) on every start —
 * 10–25 ms, more than everything else `diskwright info` does on a small image (issue 14). The
 * prebuild's location is fixed by the package (prebuilds/<platform>-<arch>/), so we dlopen that
 * file and hand it to the package's own index.js as its binding; the package code that wraps the
 * binding runs unchanged. Anywhere the prebuild is not where we expect (another platform, musl),
 * the package loads the ordinary way.
 */
export function nativeExtensions<T>(): T {
  loaded ??= load();
  return loaded as T;
}

let loaded: unknown;
const require = createRequire(import.meta.url);

function load(): unknown {
  const index = require.resolve('fs-native-extensions');
  const bindingFile = join(dirname(index), 'binding.js');
  const prebuild = join(dirname(index), 'prebuilds', `${process.platform}-${process.arch}`, 'fs-native-extensions.node');
  // Alpine's musl needs the -musl prebuild that require-addon picks; leave that to it.
  if (require.cache[bindingFile] === undefined && existsSync(prebuild) && !existsSync('/etc/alpine-release')) {
    const binding = new Module(bindingFile);
    binding.filename = bindingFile;
    process.dlopen(binding, prebuild);
    binding.loaded = true;
    require.cache[bindingFile] = binding;
  }
  return require(index);
}

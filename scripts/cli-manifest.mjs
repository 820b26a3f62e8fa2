// Records every command's name, summary, help and options in dist/cli/commands/manifest.json, so
// the CLI answers --help and option errors, and picks the one module to load, without importing
// every command module (and through them the whole library) at startup.
import { writeFileSync } from 'node:fs';

const { collectCommands } = await import('../dist/cli/registry.js');
const entries = await collectCommands();
writeFileSync(new URL('../dist/cli/commands/manifest.json', import.meta.url), `${JSON.stringify(entries)}\n`);

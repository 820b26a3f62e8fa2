// Compares a native and a WebAssembly run of e2fsprogs' suite against the known-differences list.

/**
 * Parses known-differences.txt: `TEST  reason…` per line, `#` comments. Every entry needs a
 * reason; a test listed twice is an error.
 */
export function parseKnownDifferences(text) {
  const known = new Map();
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const match = /^([a-z]_[A-Za-z0-9_]+)\s+(\S.*)$/.exec(line);
    if (!match) throw new Error(`known-differences.txt:${index + 1}: expected \`TEST  reason\`, got \`${raw}\``);
    if (known.has(match[1])) throw new Error(`known-differences.txt:${index + 1}: ${match[1]} is listed twice`);
    known.set(match[1], match[2]);
  });
  return known;
}

/** passed / ran of one run (`ran` = ok + failed; skipped tests did not run). */
export function tally(results) {
  const values = Object.values(results);
  return { passed: values.filter((r) => r.status === 'ok').length, ran: values.filter((r) => r.status !== 'skipped').length };
}

/**
 * Classifies every test. `unexpected`: passes natively, fails (or does not run) under WASM and is
 * not listed — the failures. `known`: the same but listed. `fixed`: listed, yet passes under WASM
 * (the entry should go). `nativeOnly`: fails natively (nothing to compare).
 */
export function compareRuns(native, wasm, known) {
  const out = { unexpected: [], known: [], fixed: [], nativeOnly: [], stale: [] };
  for (const name of Object.keys(native).sort()) {
    const n = native[name].status;
    const w = wasm[name]?.status ?? 'missing';
    if (n === 'ok' && w !== 'ok') (known.has(name) ? out.known : out.unexpected).push(name);
    else if (n === 'ok' && w === 'ok' && known.has(name)) out.fixed.push(name);
    else if (n === 'failed') out.nativeOnly.push(name);
  }
  // Entries naming a test this source does not have, or one that is skipped natively here.
  for (const name of known.keys()) {
    if (native[name] === undefined || native[name].status === 'skipped') out.stale.push(name);
  }
  return out;
}

/** The summary table and the lists, as lines. */
export function formatSummary({ native, wasm, nativeSeconds, wasmSeconds, differences, known }) {
  const n = tally(native);
  const w = tally(wasm);
  const lines = [
    '',
    '| e2fsprogs tests/ | passed / ran | wall |',
    '|---|---|---|',
    `| native | ${n.passed} / ${n.ran} | ${Math.round(nativeSeconds)} s |`,
    `| WASM (diskwright) | ${w.passed} / ${w.ran} | ${Math.round(wasmSeconds)} s |`,
    '',
    `native-only failures (not compared): ${differences.nativeOnly.join(', ') || 'none'}`,
    `known differences (WASM fails, listed): ${differences.known.length}`,
  ];
  for (const name of differences.known) lines.push(`  ${name}: ${known.get(name)}`);
  if (differences.fixed.length) lines.push(`listed but passing now — remove from known-differences.txt: ${differences.fixed.join(', ')}`);
  if (differences.stale.length) lines.push(`listed but not run natively here: ${differences.stale.join(', ')}`);
  lines.push(`UNEXPECTED differences (pass natively, fail under WASM): ${differences.unexpected.length ? differences.unexpected.join(', ') : 'none'}`);
  return lines;
}

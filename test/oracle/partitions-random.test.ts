/**
 * Oracle property: random layouts partitioned by the real sfdisk read back exactly as sfdisk prints
 * them (`--json` and `-l -uS`, byte for byte).
 */
import { rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { execa } from 'execa';
import { beforeAll, describe, expect } from 'vitest';
import { formatSfdiskJson, formatSfdiskList, readPartitionTable } from '../../src/partition/index.js';
import { requireTool } from '../helpers/oracle.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };
let dir = '';

beforeAll(async () => {
  await requireTool('sfdisk', 'fdisk');
  dir = await tempDir('diskwright-oracle-random-');
});

async function sfdisk(args: string[], input?: string): Promise<string> {
  return (await execa('sfdisk', args, { env, cwd: dir, input, stripFinalNewline: false })).stdout;
}

async function check(script: string, sizeMiB: number, extraBytes = 0): Promise<void> {
  const name = 'r.img';
  const path = join(dir, name);
  await writeFile(path, '');
  await truncate(path, sizeMiB * 1024 * 1024 + extraBytes);
  try {
    await sfdisk(['--quiet', '--no-reread', '--no-tell-kernel', name], script);
    const table = await readPartitionTable(path);
    expect(formatSfdiskJson(table, name)).toBe(await sfdisk(['--json', name]));
    expect(formatSfdiskList(table, name)).toBe(await sfdisk(['-l', '-uS', name]));
  } finally {
    await rm(path, { force: true });
  }
}

const MiB = 2048; // sectors
const dosTypes = ['83', '82', '7', 'c', 'ef', '8e', 'fd', 'a5', 'b', '1', '99', 'e8'];

const dosScript = fc
  .record({
    id: fc.nat({ max: 0xffffffff }),
    primaries: fc.array(fc.record({ gapMiB: fc.integer({ min: 1, max: 20 }), sizeSectors: fc.integer({ min: 1, max: 200_000 }), type: fc.constantFrom(...dosTypes), boot: fc.boolean() }), { maxLength: 3 }),
    extended: fc.option(
      fc.record({
        type: fc.constantFrom('5', 'f', '85'),
        logicals: fc.array(fc.record({ gapMiB: fc.integer({ min: 1, max: 10 }), sizeSectors: fc.integer({ min: 1, max: 100_000 }), type: fc.constantFrom(...dosTypes), boot: fc.boolean() }), { maxLength: 5 }),
      }),
    ),
    shuffle: fc.boolean(),
  })
  .map((spec) => {
    let at = 0;
    const lines = [`label: dos`, `label-id: 0x${spec.id.toString(16).padStart(8, '0')}`];
    const primaries = spec.primaries.map((p) => {
      const start = at + p.gapMiB * MiB;
      at = Math.ceil((start + p.sizeSectors) / MiB) * MiB;
      return `start=${start}, size=${p.sizeSectors}, type=${p.type}${p.boot ? ', bootable' : ''}`;
    });
    if (spec.shuffle) primaries.reverse();
    lines.push(...primaries);
    if (spec.extended) {
      const extStart = at + MiB;
      let cursor = extStart;
      const logicals = spec.extended.logicals.map((l) => {
        const start = cursor + l.gapMiB * MiB;
        cursor = Math.ceil((start + l.sizeSectors) / MiB) * MiB;
        return `start=${start}, size=${l.sizeSectors}, type=${l.type}${l.boot ? ', bootable' : ''}`;
      });
      lines.push(`start=${extStart}, size=${cursor + MiB - extStart}, type=${spec.extended.type}`, ...logicals);
      at = cursor + MiB;
    }
    return { script: `${lines.join('\n')}\n`, sizeMiB: Math.ceil(at / MiB) + 2 };
  });

const gptTypes = ['L', 'S', 'U', 'H', 'R', 'V', '21686148-6449-6E6F-744E-656564454649', 'E6D6D379-F507-44C2-A23C-238F2A3DF928', '01234567-0000-0000-0000-000000000000'];
const gptScript = fc
  .record({
    parts: fc.array(
      fc.record({
        gapMiB: fc.integer({ min: 0, max: 10 }),
        sizeSectors: fc.integer({ min: 1, max: 300_000 }),
        type: fc.constantFrom(...gptTypes),
        name: fc.array(fc.constantFrom('a', 'Z', '9', ' ', '-', 'ü', 'é'), { maxLength: 20 }).map((c) => c.join('')),
        attrs: fc.subarray(['RequiredPartition', 'NoBlockIOProtocol', 'LegacyBIOSBootable', 'GUID:48', 'GUID:55', 'GUID:63']),
      }),
      { maxLength: 6 },
    ),
    tableLength: fc.constantFrom(128, 128, 32, 200),
  })
  .map((spec) => {
    let at = MiB;
    const lines = ['label: gpt', `table-length: ${spec.tableLength}`];
    for (const p of spec.parts) {
      const start = at + p.gapMiB * MiB;
      at = Math.ceil((start + p.sizeSectors) / MiB) * MiB;
      const extras = [p.name ? `name="${p.name}"` : '', p.attrs.length ? `attrs="${p.attrs.join(' ')}"` : ''].filter(Boolean);
      lines.push([`start=${start}`, `size=${p.sizeSectors}`, `type=${p.type}`, ...extras].join(', '));
    }
    return { script: `${lines.join('\n')}\n`, sizeMiB: Math.ceil(at / MiB) + 2 };
  });

describe('random layouts made by sfdisk', () => {
  test.prop([dosScript, fc.nat(1024 * 1024)], { numRuns: 25 })('dos layouts (primaries, extended, logicals, boot flags, odd image sizes) match sfdisk', async ({ script, sizeMiB }, extra) => {
    await check(script, sizeMiB, extra);
  });

  test.prop([gptScript, fc.nat(1024 * 1024)], { numRuns: 25 })('GPT layouts (names, attributes, gaps, table lengths, odd image sizes) match sfdisk', async ({ script, sizeMiB }, extra) => {
    await check(script, sizeMiB, extra);
  });
});

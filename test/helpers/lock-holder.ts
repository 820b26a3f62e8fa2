import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';

const distDisk = fileURLToPath(new URL('../../dist/disk/index.js', import.meta.url));

/**
 * A child process holding the diskwright lock on `image` until it is killed or its stdin closes;
 * named `diskwright` as the CLI names itself (src/cli/main.ts), unless `title` says otherwise
 * (`null`: left as node, a library user's process).
 */
export async function holdLock(image: string, access: 'read' | 'write', title: string | null = 'diskwright'): Promise<{ child: ResultPromise; pid: number; release: () => Promise<void> }> {
  const script = `
    ${title === null ? '' : `process.title = ${JSON.stringify(title)};`}
    const { lockImage } = await import(${JSON.stringify(distDisk)});
    await lockImage(${JSON.stringify(image)}, { access: ${JSON.stringify(access)} });
    process.stdout.write('locked\\n');
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `;
  const child = execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, stdin: 'pipe' });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    void child.then((r) => reject(new Error(`lock holder exited: ${r.stderr}`)));
  });
  return {
    child,
    pid: child.pid!,
    release: async () => {
      child.stdin!.end();
      await child;
    },
  };
}
